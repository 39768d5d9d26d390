#!/usr/bin/env bash
# A newcomer's proof that the IMS core works, in about a minute: starts the core as shipped
# (scripts/run.sh --detach: deps, build, deploy/config/*.yaml), registers two real softphones
# (baresip, SIP digest: carol@ims.lab and dave@ims.lab), lets carol call dave for a few seconds,
# hangs up, and prints what happened: registration, call set-up time, ACK and BYE at the far end,
# RTP packets each way, no SIP transaction left in any CSCF. Stops the core it started.
#
#   scripts/demo.sh [--no-install] [--no-build] [--seconds N] [--keep-running]
#
# Exits non-zero naming the step that failed. A core already started by scripts/run.sh is used
# (and left running). The implementation is tests/system/demo.py, shared with the system test
# tests/system/test_demo.py. Files: var/demo/ (phones' config and logs), var/<nf>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 tests/system/demo.py "$@"

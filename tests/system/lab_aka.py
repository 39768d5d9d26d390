"""AKA and digest arithmetic of the system tests (Python standard library only): Milenage
(TS 35.206) on a table AES-128 (FIPS-197), RES of a challenge nonce, the SQN inside it, and the
RFC 2617 digest. Used to spot the challenges SIPp 3.6.1 answers wrongly, by the hand-made UEs of
lab_raw.py and by the benchmark."""

# The demo subscribers' AKA credentials (deploy/config/subscribers.yaml): hex bytes SIPp 3.6.1
# can take (no 00/0a/0d/5b/5d in K or OP, docs/pitfalls.md). The SIPp scenarios carry them literally
# (SIPp takes no keyword inside [authentication]); lab.Lab.sipp rewrites them for other keys.
AKA_K = "8baf473f2f8fd09487cccbd7097c6862"
AKA_OP = "11111111111111111111111111111111"
AKA_AMF = "8000"

# --- Milenage RES (to spot the challenges SIPp 3.6.1 answers wrongly) ------------------------------
#
# SIPp 3.6.1 uses RES as a C string for the AKAv1-MD5 digest: a RES with a 0x00 byte is cut there
# and its response is wrong (the S-CSCF rightly answers 403). About 3 % of random RANDs do that.
# Lab.register_aka retries exactly those (fresh vector), after checking the RES here: AES-128 (FIPS
# 197) and Milenage f2 (TS 35.206), checked against FIPS-197 C.1 and TS 35.208 set 1 in selftest().

def _sbox():
    sbox = [0] * 256
    p = q = 1
    while True:
        p = p ^ ((p << 1) & 0xff) ^ (0x1b if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xff
        if q & 0x80:
            q ^= 0x09
        x = q
        for s in (1, 2, 3, 4):
            x ^= ((q << s) | (q >> (8 - s))) & 0xff
        sbox[p] = x ^ 0x63
        if p == 1:
            break
    sbox[0] = 0x63
    return sbox


SBOX = _sbox()


def _xt(a):
    a <<= 1
    return (a ^ 0x11b) if a & 0x100 else a


def aes128_encrypt(key, block):
    w = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xt(rcon)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    s = [b ^ k for b, k in zip(block, sum(w[0:4], []))]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]          # ShiftRows (column-major state)
        if rnd != 10:
            m = []
            for c in range(4):
                a = s[4 * c:4 * c + 4]
                m += [_xt(a[0]) ^ _xt(a[1]) ^ a[1] ^ a[2] ^ a[3],
                      a[0] ^ _xt(a[1]) ^ _xt(a[2]) ^ a[2] ^ a[3],
                      a[0] ^ a[1] ^ _xt(a[2]) ^ _xt(a[3]) ^ a[3],
                      _xt(a[0]) ^ a[0] ^ a[1] ^ a[2] ^ _xt(a[3])]
            s = m
        s = [b ^ k for b, k in zip(s, sum(w[4 * rnd:4 * rnd + 4], []))]
    return bytes(s)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def milenage_res(k, op, rand):
    opc = xor(aes128_encrypt(k, op), op)
    temp = aes128_encrypt(k, xor(rand, opc))
    c2 = bytes(15) + b"\x01"
    out2 = xor(aes128_encrypt(k, xor(xor(temp, opc), c2)), opc)
    return out2[8:16]


def aka_res_of_nonce(nonce_b64, k=AKA_K, op=AKA_OP):
    """RES (bytes) for the RAND in an AKAv1-MD5 nonce (base64 of RAND || AUTN)."""
    import base64
    rand = base64.b64decode(nonce_b64)[:16]
    return milenage_res(bytes.fromhex(k), bytes.fromhex(op), rand)


def selftest():
    assert aes128_encrypt(bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
                          bytes.fromhex("00112233445566778899aabbccddeeff")).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert milenage_res(bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"),
                        bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318"),
                        bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")).hex() == "a54211d5e3ba50bf"


# --- the SQN inside a nonce, and the RFC 2617 digest --------------------------------------------

def milenage_f2_f5(k, op, rand):
    """(RES, AK) of Milenage (TS 35.206 §4.1: OUT2 = E_K(TEMP xor OPc xor c2) xor OPc, r2 = 0;
    RES = OUT2[8:16], AK = OUT2[0:6]). Same computation as milenage_res."""
    opc = xor(aes128_encrypt(k, op), op)
    temp = aes128_encrypt(k, xor(rand, opc))
    out2 = xor(aes128_encrypt(k, xor(xor(temp, opc), bytes(15) + b"\x01")), opc)
    return out2[8:16], out2[0:6]


def aka_sqn_of_nonce(nonce_b64, k=AKA_K, op=AKA_OP):
    """The SQN (int) inside an AKAv1-MD5 nonce: AUTN = SQN xor AK || AMF || MAC (TS 33.102 §6.3.3)."""
    import base64
    raw = base64.b64decode(nonce_b64)
    _, ak = milenage_f2_f5(bytes.fromhex(k), bytes.fromhex(op), raw[:16])
    return int.from_bytes(xor(raw[16:22], ak), "big")


def digest_response(ha1, nonce, method, uri, nc=None, cnonce=None, qop=None):
    """RFC 2617 §3.2.2.1 response (MD5) from HA1 (hex)."""
    import hashlib
    md5 = lambda s: hashlib.md5(s if isinstance(s, bytes) else s.encode()).hexdigest()  # noqa: E731
    ha2 = md5("%s:%s" % (method, uri))
    if qop:
        return md5("%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
    return md5("%s:%s:%s" % (ha1, nonce, ha2))


def digest_ha1(username, realm, password):
    """HA1 = MD5(username:realm:password); password may be bytes (RFC 3310: RES as octets)."""
    import hashlib
    pw = password if isinstance(password, bytes) else password.encode()
    return hashlib.md5(("%s:%s:" % (username, realm)).encode() + pw).hexdigest()

#!/usr/bin/env node
// Offline validation of the Kubernetes manifests in a directory (deploy/k8s): every document of
// every *.yaml file is checked against the OpenAPI schema of its apiVersion/kind with the npm
// package kubernetes-models (.validate()), then against each other:
//   - kustomization.yaml lists exactly the manifest files of the directory;
//   - every object is in the namespace of kustomization.yaml;
//   - ConfigMap volumes name an existing ConfigMap, subPaths an existing key, mounts a volume;
//   - probe ports and Service targetPorts name a port of the selected container; every Service
//     and NetworkPolicy selects a workload;
//   - pcscf.media.rtpengine (the P-CSCF configs of the ConfigMap) names Services of the directory
//     by their cluster DNS name, with a UDP port they have;
//   - every ConfigMap value ending in .yaml parses; the S-CSCF name agrees between hss.yaml,
//     icscf.yaml and scscf.yaml, or with the pods of an S-CSCF StatefulSet named by their pod
//     name (each its own Diameter identity, a Redis store); with --subscribers FILE the
//     subscribers ConfigMap equals FILE;
//   - $(VAR) references are defined; secretKeyRefs name a Secret and key; no ConfigMap holds a
//     Secret's value or a password= ; the Redis and PostgreSQL addresses of the NF configs are
//     Services with that port; several HSS replicas only on PostgreSQL.
// The directory is rendered first (a kustomize subset: bases, strategic-merge patches; see below).
//
//   node validate-k8s.mjs [--modules DIR] [--subscribers FILE] K8S_DIR
// DIR holds node_modules with kubernetes-models and yaml (tests/deploy/setup.sh installs them;
// default: $K8S_VALIDATE_MODULES, else next to this script). Exit 0 valid, 1 invalid, 2 usage or
// missing modules.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
let modules = process.env.K8S_VALIDATE_MODULES || here;
let subscribersFile = null;
let printRendered = false;   // --print: the rendered objects as one JSON array (test_k8s compares kubectl's)
const rest = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--modules") modules = argv[++i];
  else if (argv[i] === "--subscribers") subscribersFile = argv[++i];
  else if (argv[i] === "--print") printRendered = true;
  else rest.push(argv[i]);
}
if (rest.length !== 1 || !modules) {
  console.error("usage: validate-k8s.mjs [--modules DIR] [--subscribers FILE] K8S_DIR");
  process.exit(2);
}
const dir = rest[0];

const require = createRequire(path.join(path.resolve(modules), "node_modules", "_validate-k8s.js"));
let YAML;
try {
  YAML = require("yaml");
  require.resolve("kubernetes-models/v1");
} catch (e) {
  console.error(`validate-k8s: npm packages kubernetes-models and yaml not found under ${modules}/node_modules ` +
                `(run tests/deploy/setup.sh, or: npm install --no-save --prefix ${modules} kubernetes-models yaml): ${e.message}`);
  process.exit(2);
}

const errors = [];
const err = (where, msg) => errors.push(`${where}: ${msg}`);

function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  let mod;
  try {
    mod = require(`kubernetes-models/${apiVersion}`);   // "v1", "apps/v1", ...
  } catch {
    return null;
  }
  return typeof mod[kind] === "function" ? mod[kind] : null;
}

function describeValidation(e) {
  if (Array.isArray(e.errors) && e.errors.length)
    return e.errors.map((x) => `${x.instancePath || "/"} ${x.message}${x.params ? " " + JSON.stringify(x.params) : ""}`).join("; ");
  return e.message;
}

// ---- load a kustomization directory: its files, its base directories, its patches ----
// A small subset of kustomize, enough for deploy/k8s and its overlay deploy/k8s-ha, so that what
// is checked is what `kubectl apply -k` would apply: resources (files, and directories with their
// own kustomization.yaml), namespace, and patches given by path holding strategic-merge patches
// (maps merged key by key, lists of named items merged by name, other lists replaced;
// `$patch: delete` removes the object). Anything else in a kustomization is an error here.
const KNOWN_KUSTOMIZE_KEYS = new Set(["apiVersion", "kind", "namespace", "resources", "patches", "images"]);

function parseFile(file, label) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  const out = [];
  docs.forEach((doc, i) => {
    const where = `${label}#${i + 1}`;
    if (doc.errors.length) { doc.errors.forEach((e) => err(where, `YAML: ${e.message}`)); return; }
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) out.push({ where, obj });
  });
  return out;
}

function mergePatch(target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch") continue;
    const cur = target[k];
    if (Array.isArray(v) && Array.isArray(cur) && v.every((x) => x && typeof x === "object" && "name" in x)) {
      for (const item of v) {
        const same = cur.find((c) => c && c.name === item.name);
        if (same) mergePatch(same, item); else cur.push(structuredClone(item));
      }
    } else if (v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur)) {
      mergePatch(cur, v);
    } else if (v === null) {
      delete target[k];
    } else {
      target[k] = structuredClone(v);
    }
  }
}

function loadKustomization(kdir, label, seen = new Set()) {
  const real = fs.realpathSync(kdir);
  if (seen.has(real)) { err(label, "kustomization cycle"); return { objects: [], kustomization: null }; }
  seen.add(real);
  const files = fs.readdirSync(kdir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const kfile = files.find((f) => f === "kustomization.yaml");
  if (!kfile) { err(label, "no kustomization.yaml"); return { objects: [], kustomization: null }; }
  const k = parseFile(path.join(kdir, kfile), `${label}${kfile}`)[0]?.obj || {};
  const kwhere = `${label}${kfile}`;
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1") err(kwhere, `apiVersion ${k.apiVersion}`);
  for (const key of Object.keys(k))
    if (!KNOWN_KUSTOMIZE_KEYS.has(key)) err(kwhere, `${key}: not a kustomize feature this validator renders`);
  const listed = k.resources || [];
  const patchFiles = (k.patches || []).map((p, i) => {
    if (!p || typeof p.path !== "string" || Object.keys(p).length !== 1)
      err(kwhere, `patches[${i}]: only {path: FILE} (strategic merge) is rendered here`);
    return p?.path;
  }).filter(Boolean);
  let objects = [];
  for (const r of listed) {
    const full = path.join(kdir, r);
    if (!fs.existsSync(full)) { err(kwhere, `resource ${r} does not exist`); continue; }
    if (fs.statSync(full).isDirectory()) {
      objects = objects.concat(loadKustomization(full, `${label}${r.replace(/\/?$/, "/")}`, seen).objects);
    } else {
      objects = objects.concat(parseFile(full, `${label}${r}`).map((o) => ({ file: r, ...o })));
    }
  }
  for (const f of files)
    if (f !== kfile && !listed.includes(f) && !patchFiles.includes(f)) err(kwhere, `${f} is not in resources`);
  for (const pf of patchFiles) {
    if (!fs.existsSync(path.join(kdir, pf))) { err(kwhere, `patch ${pf} does not exist`); continue; }
    for (const { where, obj: patch } of parseFile(path.join(kdir, pf), `${label}${pf}`)) {
      const i = objects.findIndex(({ obj }) => obj.kind === patch.kind && obj.apiVersion === patch.apiVersion &&
                                                obj.metadata?.name === patch.metadata?.name);
      if (i < 0) { err(where, `patch: no ${patch.apiVersion} ${patch.kind}/${patch.metadata?.name} to patch`); continue; }
      if (patch.$patch === "delete") objects.splice(i, 1);
      else mergePatch(objects[i].obj, patch);
    }
  }
  if (k.namespace)
    for (const { where, obj } of objects)
      if (obj.kind !== "Namespace" && obj.kind !== "Kustomization" && obj.metadata?.namespace &&
          obj.metadata.namespace !== k.namespace)
        err(where, `namespace ${obj.metadata.namespace}, kustomization says ${k.namespace}`);
  return { objects, kustomization: k };
}

// ---- render, then validate every object against its schema ----
const rendered = loadKustomization(dir, "");
const objects = [];   // {file, where, obj}
for (const { file, where: w, obj } of rendered.objects) {
  if (obj.kind === "Kustomization") continue;
  const Cls = modelClass(obj.apiVersion, obj.kind);
  if (!Cls) {
    err(w, `unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
    continue;
  }
  const where = `${w} ${obj.kind}/${obj.metadata?.name}`;
  try {
    new Cls(obj).validate();
  } catch (e) {
    err(where, `schema: ${describeValidation(e)}`);
    continue;
  }
  objects.push({ file, where, obj });
}
if (printRendered) {
  console.log(JSON.stringify(objects.map((o) => o.obj)));
  process.exit(errors.length ? 1 : 0);
}

// ---- cross-references ----
const byKind = (kind) => objects.filter((o) => o.obj.kind === kind);
const configMaps = new Map(byKind("ConfigMap").map((o) => [o.obj.metadata.name, o.obj]));
const workloads = [...byKind("Deployment"), ...byKind("StatefulSet")];

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

for (const { where, obj } of workloads) {
  const spec = obj.spec;
  if (!matches(spec.selector?.matchLabels, spec.template?.metadata?.labels))
    err(where, "selector.matchLabels do not match the pod template's labels");
  const pod = spec.template.spec;
  const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
  for (const t of spec.volumeClaimTemplates || []) volumes.set(t.metadata.name, { pvc: true });
  for (const v of pod.volumes || [])
    if (v.configMap && !configMaps.has(v.configMap.name)) err(where, `volume ${v.name}: no ConfigMap ${v.configMap.name}`);
  for (const c of pod.containers) {
    if (!c.image) err(where, `container ${c.name}: no image`);
    const portNames = new Set((c.ports || []).map((p) => p.name).filter(Boolean));
    for (const m of c.volumeMounts || []) {
      const v = volumes.get(m.name);
      if (!v) { err(where, `container ${c.name}: mount ${m.mountPath}: no volume ${m.name}`); continue; }
      if (m.subPath && v.configMap) {
        const cm = configMaps.get(v.configMap.name);
        if (cm && !(cm.data && m.subPath in cm.data)) err(where, `mount ${m.mountPath}: ConfigMap ${v.configMap.name} has no key ${m.subPath}`);
      }
    }
    for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
      const p = c[probe]?.httpGet?.port;
      if (typeof p === "string" && !portNames.has(p)) err(where, `container ${c.name}: ${probe} port ${p} is not a named port`);
    }
  }
}

for (const { where, obj } of byKind("Service")) {
  const targets = workloads.filter((w) => matches(obj.spec.selector, w.obj.spec.template.metadata.labels));
  if (!targets.length) { err(where, "selects no Deployment or StatefulSet"); continue; }
  for (const p of obj.spec.ports || []) {
    if (typeof p.targetPort !== "string") continue;
    const ok = targets.some((w) => w.obj.spec.template.spec.containers.some((c) =>
      (c.ports || []).some((cp) => cp.name === p.targetPort && (cp.protocol || "TCP") === (p.protocol || "TCP"))));
    if (!ok) err(where, `port ${p.name}: targetPort ${p.targetPort}/${p.protocol || "TCP"} is no container port`);
  }
}
for (const { where, obj } of byKind("NetworkPolicy")) {
  if (!workloads.some((w) => matches(obj.spec.podSelector?.matchLabels, w.obj.spec.template.metadata.labels)))
    err(where, "podSelector selects no Deployment or StatefulSet");
}
for (const { where, obj } of byKind("StatefulSet")) {
  const svc = byKind("Service").find((s) => s.obj.metadata.name === obj.spec.serviceName);
  if (!svc) err(where, `serviceName ${obj.spec.serviceName}: no such Service`);
  else if (svc.obj.spec.clusterIP !== "None") err(where, `serviceName ${obj.spec.serviceName} should be headless`);
}

// ---- the NF configurations inside the ConfigMaps ----
const nfConfigs = {};
for (const [name, cm] of configMaps) {
  for (const [key, value] of Object.entries(cm.data || {})) {
    if (!/\.ya?ml$/.test(key)) continue;
    try {
      nfConfigs[key] = YAML.parse(value);
    } catch (e) {
      err(`ConfigMap/${name}`, `${key}: YAML: ${e.message}`);
    }
  }
}
// $(VAR) in an env value or an argument names a variable defined before it in the same container
// (Kubernetes leaves an unknown reference as it is: the NF would get the literal text).
for (const { where, obj } of workloads) {
  for (const c of obj.spec.template.spec.containers) {
    const defined = new Set();
    const refs = (s, what) => {
      for (const m of String(s).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
        if (!defined.has(m[1])) err(where, `container ${c.name}: ${what} uses $(${m[1]}), not defined before it`);
    };
    for (const e of c.env || []) {
      if (e.value !== undefined) refs(e.value, `env ${e.name}`);
      defined.add(e.name);
    }
    for (const a of [...(c.command || []), ...(c.args || [])]) refs(a, "command/args");
  }
}
// The environment of the workload running an NF (its container of that name), as {name: value}
// with $(VAR) expanded, for one pod name.
function nfEnv(nf, podName) {
  const w = workloads.find((o) => o.obj.spec.template.spec.containers.some((c) => c.name === nf));
  const c = w?.obj.spec.template.spec.containers.find((x) => x.name === nf);
  const env = {};
  for (const e of c?.env || []) {
    if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
    else if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, v) => env[v] ?? `$(${v})`);
  }
  return { workload: w?.obj, env };
}
// Secrets: every secretKeyRef names a Secret of the directory and a key it has; no ConfigMap value
// holds a Secret's value (a password belongs in the Secret only), nor a libpq password= anywhere.
const secrets = new Map(byKind("Secret").map((o) => [o.obj.metadata.name, o.obj]));
for (const { where, obj } of workloads)
  for (const c of obj.spec.template.spec.containers)
    for (const e of c.env || []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const s = secrets.get(ref.name);
      if (!s) err(where, `container ${c.name}: env ${e.name}: no Secret ${ref.name}`);
      else if (!((s.stringData && ref.key in s.stringData) || (s.data && ref.key in s.data)))
        err(where, `container ${c.name}: env ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
    }
for (const [name, cm] of configMaps)
  for (const [key, value] of Object.entries(cm.data || {})) {
    for (const s of secrets.values())
      for (const [sk, sv] of Object.entries(s.stringData || {}))
        if (String(sv).length >= 4 && String(value).includes(String(sv)))
          err(`ConfigMap/${name}`, `${key} holds the value of Secret ${s.metadata.name} key ${sk}`);
    if (/password\s*=/.test(String(value))) err(`ConfigMap/${name}`, `${key}: a password in a connection string`);
  }
// "<service>.<namespace>.svc.cluster.local" naming a Service of the directory with that port.
function serviceAddress(where, what, host, port, proto) {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(String(host));
  if (!m) { err(where, `${what} ${host}: not <service>.<namespace>.svc.cluster.local`); return; }
  const svc = byKind("Service").find((s) => s.obj.metadata.name === m[1] && (s.obj.metadata.namespace || m[2]) === m[2]);
  if (!svc) err(where, `${what} ${host}:${port}: no Service ${m[1]} in namespace ${m[2]}`);
  else if (!(svc.obj.spec.ports || []).some((p) => p.port === Number(port) && (p.protocol || "TCP") === proto))
    err(where, `${what} ${host}:${port}: Service ${m[1]} has no ${proto} port ${port}`);
}

const hss = nfConfigs["hss.yaml"], icscf = nfConfigs["icscf.yaml"], scscf = nfConfigs["scscf.yaml"];
if (hss && icscf && scscf) {
  // The S-CSCF names: the config's scscf.name, or per pod (a StatefulSet whose IMS_SCSCF_NAME is
  // made of its pod name: <statefulset>-<ordinal>); hss.scscf_names and icscf.scscfs hold exactly
  // those (a listed name no pod has would be chosen for users and never answer).
  const { workload: sw } = nfEnv("scscf", "");
  let names = [scscf.scscf?.name];
  if (sw?.kind === "StatefulSet" && nfEnv("scscf", "x").env.IMS_SCSCF_NAME !== undefined) {
    const n = sw.spec.replicas ?? 1;
    names = [...Array(n).keys()].map((i) => nfEnv("scscf", `${sw.metadata.name}-${i}`).env.IMS_SCSCF_NAME);
    const tmpl = nfEnv("scscf", "$(POD_NAME)").env.IMS_SCSCF_NAME;
    if (tmpl === nfEnv("scscf", "other").env.IMS_SCSCF_NAME)
      err("StatefulSet scscf", `IMS_SCSCF_NAME ${tmpl} is the same for every pod (make it of $(POD_NAME))`);
    // sip:<pod>.<serviceName>.<ns>.svc.cluster.local: the governing Service must be headless
    // (checked above) and publish pods that are not ready (they are addressed by name).
    const host = /^sip:([^:;>]+)/.exec(String(names[0]))?.[1] || "";
    const svcName = host.split(".")[1];
    if (svcName !== sw.spec.serviceName)
      err("StatefulSet scscf", `IMS_SCSCF_NAME ${names[0]}: not a name of the governing Service ${sw.spec.serviceName}`);
    const gov = byKind("Service").find((s) => s.obj.metadata.name === sw.spec.serviceName);
    if (gov && !gov.obj.spec.publishNotReadyAddresses)
      err(`Service/${sw.spec.serviceName}`, "publishNotReadyAddresses must be true: S-CSCF pods are addressed by name");
    const want = JSON.stringify([...names].sort());
    if (JSON.stringify([...(hss.hss?.scscf_names || [])].sort()) !== want)
      err("ConfigMap hss.yaml", `hss.scscf_names ${JSON.stringify(hss.hss?.scscf_names)} are not the S-CSCF pods' names ${want}`);
    if (JSON.stringify((icscf.icscf?.scscfs || []).map((s) => s.name).sort()) !== want)
      err("ConfigMap icscf.yaml", `icscf.scscfs are not the S-CSCF pods' names ${want}`);
  }
  for (const name of names) {
    if (!(hss.hss?.scscf_names || []).includes(name)) err("ConfigMap hss.yaml", `hss.scscf_names does not hold the S-CSCF name ${name}`);
    if (!(icscf.icscf?.scscfs || []).some((s) => s.name === name)) err("ConfigMap icscf.yaml", `icscf.scscfs does not hold the S-CSCF name ${name}`);
  }
  // Several S-CSCF pods: their Diameter identities differ (one identity per peer), and their
  // registrations need a store that outlives a pod.
  if (names.length > 1) {
    const ids = new Set(names.map((_, i) => nfEnv("scscf", `${sw.metadata.name}-${i}`).env.IMS_SCSCF_DIAMETER_IDENTITY));
    if (ids.size !== names.length || ids.has(undefined))
      err("StatefulSet scscf", "every S-CSCF pod needs its own Diameter identity (IMS_SCSCF_DIAMETER_IDENTITY of $(POD_NAME))");
    if (scscf.store?.backend !== "redis") err("ConfigMap scscf.yaml", "several S-CSCF pods without store.backend redis: a rescheduled pod loses its users");
  }
  if (scscf.store?.backend === "redis") {
    const [h, p] = String(scscf.store.redis || "").split(":");
    serviceAddress("ConfigMap scscf.yaml", "store.redis", h, p, "TCP");
  }
  // The HSS on PostgreSQL: conninfo host/port name a Service; several replicas need it.
  const hw = nfEnv("hss", "").workload;
  if (hss.hss?.store?.backend === "postgresql") {
    const ci = String(hss.hss.store.conninfo || "");
    const kv = Object.fromEntries([...ci.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    serviceAddress("ConfigMap hss.yaml", "hss.store.conninfo host", kv.host, kv.port || "5432", "TCP");
    const c = hw?.spec.template.spec.containers.find((x) => x.name === "hss");
    if (!(c?.env || []).some((e) => e.name === "PGPASSWORD" && e.valueFrom?.secretKeyRef))
      err("workload hss", "hss.store.backend postgresql: PGPASSWORD must come from a Secret (secretKeyRef)");
  } else if (hw && (hw.spec.replicas ?? 1) > 1) {
    err("workload hss", `${hw.spec.replicas} HSS replicas on SQLite: one writer only (hss.store.backend postgresql)`);
  }
}
// The P-CSCF's rtpengine list: "<service>.<namespace>.svc.cluster.local:<port>", a UDP port of
// that Service (the ng protocol runs over UDP).
for (const [key, cfg] of Object.entries(nfConfigs)) {
  for (const addr of cfg?.pcscf?.media?.rtpengine || []) {
    const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$/.exec(String(addr));
    if (!m) { err(`ConfigMap ${key}`, `pcscf.media.rtpengine ${addr}: not <service>.<namespace>.svc.cluster.local:<port>`); continue; }
    const svc = byKind("Service").find((s) => s.obj.metadata.name === m[1] && (s.obj.metadata.namespace || m[2]) === m[2]);
    if (!svc) err(`ConfigMap ${key}`, `pcscf.media.rtpengine ${addr}: no Service ${m[1]} in namespace ${m[2]}`);
    else if (!(svc.obj.spec.ports || []).some((p) => p.port === Number(m[3]) && p.protocol === "UDP"))
      err(`ConfigMap ${key}`, `pcscf.media.rtpengine ${addr}: Service ${m[1]} has no UDP port ${m[3]}`);
  }
}
if (subscribersFile) {
  const want = YAML.parse(fs.readFileSync(subscribersFile, "utf8"));
  const got = nfConfigs["subscribers.yaml"];
  if (!got) err(dir, "no ConfigMap key subscribers.yaml");
  else if (JSON.stringify(got) !== JSON.stringify(want))
    err(dir, `ConfigMap subscribers.yaml differs from ${subscribersFile} (copy it again)`);
}

if (errors.length) {
  for (const e of errors) console.error(`INVALID ${e}`);
  console.error(`validate-k8s: ${errors.length} problem(s) in ${dir}`);
  process.exit(1);
}
for (const { where } of objects) console.log(`ok ${where}`);
console.log(`validate-k8s: ${objects.length} objects valid in ${dir}`);

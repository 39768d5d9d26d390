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
//     icscf.yaml and scscf.yaml; with --subscribers FILE the subscribers ConfigMap equals FILE.
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
const rest = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--modules") modules = argv[++i];
  else if (argv[i] === "--subscribers") subscribersFile = argv[++i];
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

// ---- parse and validate every document ----
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
let kustomization = null;
const objects = [];   // {file, obj}
for (const f of files) {
  const text = fs.readFileSync(path.join(dir, f), "utf8");
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  docs.forEach((doc, i) => {
    const where = `${f}#${i + 1}`;
    if (doc.errors.length) {
      doc.errors.forEach((e) => err(where, `YAML: ${e.message}`));
      return;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) return;   // empty document
    if (obj.kind === "Kustomization") {
      kustomization = { file: f, obj };
      return;
    }
    const Cls = modelClass(obj.apiVersion, obj.kind);
    if (!Cls) {
      err(where, `unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
      return;
    }
    try {
      new Cls(obj).validate();
    } catch (e) {
      err(`${where} ${obj.kind}/${obj.metadata?.name}`, `schema: ${describeValidation(e)}`);
      return;
    }
    objects.push({ file: f, where: `${where} ${obj.kind}/${obj.metadata?.name}`, obj });
  });
}

// ---- kustomization ----
if (!kustomization) {
  err(dir, "no kustomization.yaml");
} else {
  const k = kustomization.obj;
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1") err(kustomization.file, `apiVersion ${k.apiVersion}`);
  const listed = k.resources || [];
  for (const r of listed)
    if (!fs.existsSync(path.join(dir, r))) err(kustomization.file, `resource ${r} does not exist`);
  for (const f of files)
    if (f !== kustomization.file && !listed.includes(f)) err(kustomization.file, `${f} is not in resources`);
  if (k.namespace)
    for (const { where, obj } of objects)
      if (obj.kind !== "Namespace" && obj.metadata?.namespace && obj.metadata.namespace !== k.namespace)
        err(where, `namespace ${obj.metadata.namespace}, kustomization says ${k.namespace}`);
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
const hss = nfConfigs["hss.yaml"], icscf = nfConfigs["icscf.yaml"], scscf = nfConfigs["scscf.yaml"];
if (hss && icscf && scscf) {
  const name = scscf.scscf?.name;
  if (!(hss.hss?.scscf_names || []).includes(name)) err("ConfigMap hss.yaml", `hss.scscf_names does not hold the S-CSCF name ${name}`);
  if (!(icscf.icscf?.scscfs || []).some((s) => s.name === name)) err("ConfigMap icscf.yaml", `icscf.scscfs does not hold the S-CSCF name ${name}`);
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

#!/usr/bin/env python3
"""Checks the Kubernetes manifests under deploy/k8s and docs/deploy.md's arithmetic.

    check_manifests.py REPO_ROOT [--manifests DIR] [--doc FILE | --no-doc]

Every YAML document must parse (PyYAML) and name its apiVersion, kind and
metadata.name. Each MPIJob must be a kubeflow.org/v2beta1 OpenMPI job with one
launcher and N workers, slotsPerWorker 1, one nvidia.com/gpu per worker pod and
none on the launcher, schedulerName volcano, a gang minimum (schedulingPolicy.
minAvailable) of launcher + workers, `mpirun -np` equal to workers x slots, and
`falcon-run ART` where ART is a read-only PersistentVolumeClaim mount that a
Job's `falcon-compile ... --tp T --pp P -o ART` writes, with T x P = workers.
The table between `<!-- arithmetic: begin -->` and `<!-- arithmetic: end -->`
in docs/deploy.md is recomputed from examples/configs/*/config.json: weight
bytes of the largest rank, KV-cache bytes per token per GPU, the tokens that
fit and the sequences of 2,048 tokens. `--compare-plan MODEL=FILE` checks this
script's plan arithmetic against `falcon-compile --print-plan=json` (bf16).

Prints one line per MPIJob and exits 0, or prints every problem as
`FILE: document N (KIND NAME): FIELD: what is wrong` and exits 1.
"""

import argparse
import json
import math
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:
    sys.exit("check_manifests.py: PyYAML is missing (Debian: apt-get install python3-yaml; "
             "scripts/install-deps.sh installs it)")

GANG_SCHEDULER = "volcano"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu.product"
# GPU feature discovery's product label -> the name in docs/deploy.md and the
# memory nvidia-smi reports (MiB; ECC on where the card has it on by default).
GPUS = {
    "NVIDIA-A100-SXM4-80GB": ("A100-SXM4-80GB", 81920),
    "NVIDIA-A40": ("A40", 46068),
    "Tesla-T4": ("T4", 15360),
}
RESERVE_PERCENT = 10    # of each GPU's memory, for the CUDA context, workspace, activations
CONTEXT = 2048          # falcon-180B/40b/7b max_position_embeddings
KV_BYTES = {"f32": 4, "bf16": 2, "f16": 2}
NAMESPACED = {"PersistentVolumeClaim", "Job", "MPIJob", "ConfigMap"}
SHELLS = {"sh", "bash", "dash"}


class Checker:
    def __init__(self, root, manifests):
        self.root = root
        self.manifests = manifests
        self.errors = []
        self.docs = []  # (relpath, index, doc)

    def error(self, where, field, message):
        self.errors.append(f"{where}: {field}: {message}")

    # -- loading -------------------------------------------------------------
    def load(self):
        files = []
        for dirpath, dirnames, filenames in os.walk(self.manifests):
            dirnames.sort()
            files += [os.path.join(dirpath, f) for f in sorted(filenames)
                      if f.endswith((".yaml", ".yml"))]
        if not files:
            self.errors.append(f"{self.manifests}: no .yaml files")
        for path in files:
            rel = display(path, self.root)
            try:
                with open(path) as stream:
                    loaded = list(yaml.safe_load_all(stream))
            except yaml.YAMLError as e:
                self.errors.append(f"{rel}: invalid YAML: {e}".replace("\n", " "))
                continue
            for index, doc in enumerate(loaded, 1):
                if doc is None:
                    continue
                where = f"{rel}: document {index}"
                if not isinstance(doc, dict):
                    self.errors.append(f"{where}: not a mapping")
                    continue
                for field in ("apiVersion", "kind"):
                    if not isinstance(doc.get(field), str) or not doc[field]:
                        self.error(where, field, "missing")
                name = get(doc, "metadata", "name")
                if not isinstance(name, str) or not name:
                    self.error(where, "metadata.name", "missing")
                kind = doc.get("kind")
                if kind in NAMESPACED and not get(doc, "metadata", "namespace"):
                    self.error(self.where(rel, index, doc), "metadata.namespace",
                               "missing (it would land in the default namespace)")
                if kind == "PodGroup":
                    self.error(self.where(rel, index, doc), "kind",
                               "no PodGroup: the MPI operator (--gang-scheduling=volcano) "
                               "creates it from runPolicy.schedulingPolicy")
                self.docs.append((rel, index, doc))

    def where(self, rel, index, doc):
        return f"{rel}: document {index} ({doc.get('kind')} {get(doc, 'metadata', 'name')})"

    def find(self, kind, name, namespace):
        return [d for _, _, d in self.docs if d.get("kind") == kind
                and get(d, "metadata", "name") == name
                and get(d, "metadata", "namespace") == namespace]

    # -- the compile Jobs ----------------------------------------------------
    def compiles(self):
        """falcon-compile commands of Jobs: {artifact: (where, job, options)}."""
        found = {}
        for rel, index, doc in self.docs:
            if doc.get("kind") != "Job":
                continue
            where = self.where(rel, index, doc)
            spec = get(doc, "spec", "template", "spec") or {}
            for c, container in enumerate(spec.get("containers") or []):
                for words in commands(container):
                    if os.path.basename(words[0]) != "falcon-compile":
                        continue
                    field = f"spec.template.spec.containers[{c}] falcon-compile"
                    options = parse_compile(words[1:])
                    for key in ("model", "-o", "--tp", "--pp"):
                        if key not in options:
                            self.error(where, field, f"no {key}")
                    for key in ("--tp", "--pp"):
                        if key in options and not options[key].isdigit():
                            self.error(where, field, f"{key} {options[key]} is not a number")
                    if "-o" in options:
                        artifact = options["-o"].rstrip("/")
                        if artifact in found:
                            self.error(where, field, f"-o {artifact} is also written by "
                                       f"{found[artifact][0]}")
                        found[artifact] = (where, doc, options)
        return found

    # -- the MPIJobs ---------------------------------------------------------
    def check_mpijob(self, rel, index, job, compiles):
        where = self.where(rel, index, job)
        e = lambda field, message: self.error(where, field, message)
        namespace = get(job, "metadata", "namespace")
        if job.get("apiVersion") != "kubeflow.org/v2beta1":
            e("apiVersion", f"{job.get('apiVersion')!r}, expected kubeflow.org/v2beta1")
        spec = job.get("spec") or {}
        slots = spec.get("slotsPerWorker")
        if slots != 1:
            e("spec.slotsPerWorker", f"{slots!r}, expected 1 (one rank per pod and GPU)")
        if spec.get("mpiImplementation") != "OpenMPI":
            e("spec.mpiImplementation", f"{spec.get('mpiImplementation')!r}, expected OpenMPI")
        if spec.get("launcherCreationPolicy") == "WaitForWorkersReady":
            e("spec.launcherCreationPolicy", "WaitForWorkersReady deadlocks with a gang of "
              "launcher + workers (kubeflow/mpi-operator#608): the launcher pod is never "
              "created, so the gang never fills")
        replicas = spec.get("mpiReplicaSpecs") or {}
        if set(replicas) != {"Launcher", "Worker"}:
            e("spec.mpiReplicaSpecs", f"has {sorted(replicas)}, expected Launcher and Worker")
            return None
        launcher, worker = replicas["Launcher"] or {}, replicas["Worker"] or {}
        if launcher.get("replicas") != 1:
            e("spec.mpiReplicaSpecs.Launcher.replicas", f"{launcher.get('replicas')!r}, expected 1")
        workers = worker.get("replicas")
        if not isinstance(workers, int) or workers < 1:
            e("spec.mpiReplicaSpecs.Worker.replicas", f"{workers!r}, expected a count >= 1")
            return None
        for role, replica in (("Launcher", launcher), ("Worker", worker)):
            pod = get(replica, "template", "spec") or {}
            field = f"spec.mpiReplicaSpecs.{role}.template.spec"
            if pod.get("schedulerName") != GANG_SCHEDULER:
                e(field + ".schedulerName", f"{pod.get('schedulerName')!r}, expected volcano")
            if "restartPolicy" in pod:
                e(field + ".restartPolicy", "set it on the replica spec (the operator "
                  "ignores the pod template's)")
            for kind in ("containers", "initContainers"):
                for c, container in enumerate(pod.get(kind) or []):
                    gpus = gpu_count(container)
                    cfield = f"{field}.{kind}[{c}].resources"
                    if gpus is None:
                        e(cfield, f"{GPU_RESOURCE} requests and limits differ")
                    elif role == "Launcher" and gpus:
                        e(cfield, f"the launcher requests {gpus} {GPU_RESOURCE}; it runs "
                          "mpirun only and must hold none")
                    elif role == "Worker" and kind == "initContainers" and gpus:
                        e(cfield, f"an init container requests {GPU_RESOURCE}")
            if role == "Worker":
                total = sum(gpu_count(c) or 0 for c in pod.get("containers") or [])
                if total != 1:
                    e(field + ".containers[*].resources.limits",
                      f"the worker pod requests {total} {GPU_RESOURCE}, expected exactly 1")
        run = spec.get("runPolicy") or {}
        if not isinstance(run.get("backoffLimit"), int):
            e("spec.runPolicy.backoffLimit", "missing: how often a failed run is retried")
        policy = run.get("schedulingPolicy") or {}
        minimum = policy.get("minAvailable")
        if minimum != workers + 1:
            e("spec.runPolicy.schedulingPolicy.minAvailable",
              f"{minimum!r}, expected launcher + workers = 1 + {workers} = {workers + 1}")
        queue = policy.get("queue") or get(job, "metadata", "annotations",
                                           "scheduling.volcano.sh/queue-name")
        annotated = get(job, "metadata", "annotations", "scheduling.volcano.sh/queue-name")
        if annotated and policy.get("queue") and annotated != policy["queue"]:
            e("metadata.annotations", f"queue {annotated!r} differs from "
              f"schedulingPolicy.queue {policy['queue']!r}")
        if not queue:
            e("spec.runPolicy.schedulingPolicy.queue", "missing")
        elif not self.find("Queue", queue, None):
            e("spec.runPolicy.schedulingPolicy.queue", f"no Volcano Queue {queue!r} in the manifests")

        # The launcher's mpirun -np and falcon-run ART.
        runs = []
        lpod = get(launcher, "template", "spec") or {}
        for container in lpod.get("containers") or []:
            for words in commands(container):
                if os.path.basename(words[0]) in ("mpirun", "mpiexec"):
                    runs.append(words)
        if len(runs) != 1:
            e("spec.mpiReplicaSpecs.Launcher", f"{len(runs)} mpirun commands, expected 1")
            return None
        np_value, program, rest = parse_mpirun(runs[0][1:])
        if np_value is None:
            e("Launcher mpirun", "no -np")
        elif not isinstance(slots, int) or np_value != workers * slots:
            e("Launcher mpirun -np", f"{np_value}, but Worker.replicas x slotsPerWorker = "
              f"{workers} x {slots!r}")
        if program is None or os.path.basename(program) != "falcon-run":
            e("Launcher mpirun", f"runs {program!r}, expected falcon-run")
            return None
        if not rest or rest[0].startswith(("-", "@")):
            e("Launcher falcon-run", "the first argument must be the artifact directory")
            return None
        artifact = rest[0].rstrip("/")

        # The artifact: a read-only PVC mount on the workers, written by a compile Job.
        wpod = get(worker, "template", "spec") or {}
        claim = self.claim_at(wpod, artifact)
        if claim is None:
            e("Worker volumeMounts", f"no PersistentVolumeClaim mounted at or above {artifact}")
        else:
            name, mount = claim
            if not mount.get("readOnly"):
                e(f"Worker volumeMounts[{mount.get('name')}]", "the artifact must be mounted readOnly")
            pvcs = self.find("PersistentVolumeClaim", name, namespace)
            if not pvcs:
                e("Worker volumes", f"no PersistentVolumeClaim {name!r} in namespace {namespace!r}")
            elif "ReadOnlyMany" not in (get(pvcs[0], "spec", "accessModes") or []):
                e("Worker volumes", f"PersistentVolumeClaim {name!r} lacks ReadOnlyMany")
        self.check_volume_sources(where, "Launcher", lpod, namespace)
        self.check_volume_sources(where, "Worker", wpod, namespace)
        if artifact not in compiles:
            e("Launcher falcon-run", f"no Job runs falcon-compile -o {artifact}")
            return None
        cwhere, cjob, options = compiles[artifact]
        tp, pp = int(options.get("--tp", "0") or 0), int(options.get("--pp", "0") or 0)
        if tp * pp != workers:
            e("spec.mpiReplicaSpecs.Worker.replicas", f"{workers}, but {cwhere} compiles "
              f"--tp {tp} --pp {pp} = {tp * pp} ranks")
        if get(cjob, "metadata", "namespace") != namespace:
            e("metadata.namespace", f"differs from the compile Job's ({cwhere})")
        cpod = get(cjob, "spec", "template", "spec") or {}
        cclaim = self.claim_at(cpod, artifact)
        if claim and (cclaim is None or cclaim[0] != claim[0]):
            self.error(cwhere, "volumeMounts", f"does not mount PersistentVolumeClaim "
                       f"{claim[0]!r} above {artifact}")
        elif cclaim and cclaim[1].get("readOnly"):
            self.error(cwhere, "volumeMounts", "the artifact volume is mounted readOnly")
        self.check_volume_sources(cwhere, "Job", cpod, namespace)
        product = get(wpod, "nodeSelector", GPU_LABEL)
        return dict(where=where, rel=rel, name=get(job, "metadata", "name"), workers=workers,
                    artifact=artifact, options=options, tp=tp, pp=pp, product=product)

    def claim_at(self, pod, path):
        """(claim name, volumeMount) of the PVC mounted at or above path."""
        claims = {v.get("name"): get(v, "persistentVolumeClaim", "claimName")
                  for v in pod.get("volumes") or []}
        best = None
        for container in pod.get("containers") or []:
            for mount in container.get("volumeMounts") or []:
                at = (mount.get("mountPath") or "").rstrip("/")
                if claims.get(mount.get("name")) and (path == at or path.startswith(at + "/")):
                    if best is None or len(at) > len(best[1]["mountPath"].rstrip("/")):
                        best = (claims[mount.get("name")], mount)
        return best

    def check_volume_sources(self, where, role, pod, namespace):
        for v in pod.get("volumes") or []:
            for kind, key, field in (("PersistentVolumeClaim", "persistentVolumeClaim", "claimName"),
                                     ("ConfigMap", "configMap", "name")):
                name = get(v, key, field)
                if name and not self.find(kind, name, namespace):
                    self.error(where, f"{role} volumes[{v.get('name')}]",
                               f"no {kind} {name!r} in namespace {namespace!r}")

    # -- docs/deploy.md ------------------------------------------------------
    def check_doc(self, doc_path, jobs):
        rel = display(doc_path, self.root)
        try:
            text = open(doc_path).read()
        except OSError as e:
            self.errors.append(f"{rel}: {e.strerror}")
            return
        match = re.search(r"<!-- arithmetic: begin -->(.*?)<!-- arithmetic: end -->", text, re.S)
        if not match:
            self.errors.append(f"{rel}: no <!-- arithmetic: begin/end --> table")
            return
        start = text[:match.start(1)].count("\n") + 1
        rows = []
        for offset, line in enumerate(match.group(1).split("\n")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 9 or not re.search(r"\d+ × ", cells[1]):
                continue
            rows.append((start + offset, cells))
        if not rows:
            self.errors.append(f"{rel}:{start}: the arithmetic table has no rows")
        seen = set()
        for line, cells in rows:
            self.check_row(f"{rel}:{line}", cells, jobs, seen)
        for job in jobs:
            if job["rel"] not in seen:
                self.errors.append(f"{rel}: the arithmetic table has no row for {job['rel']}")

    def check_row(self, where, cells, jobs, seen):
        e = lambda column, message: self.errors.append(f"{where}: {column}: {message}")
        profile, gpus, model, dtype, plan, wcell, kvcell, tokcell, seqcell = cells[:9]
        m = re.search(r"(\d+) × ([\w.-]+) \(([\d,]+) MiB\)", gpus)
        p = re.search(r"(\d+) × (\d+)", plan)
        if not m or not p:
            e("GPUs / tp × pp", "expected 'N × NAME (M MiB)' and 'T × P'")
            return
        count, gpu, mib = int(m.group(1)), m.group(2), number(m.group(3))
        tp, pp = int(p.group(1)), int(p.group(2))
        if tp * pp != count:
            e("tp × pp", f"{tp} × {pp} is not the {count} GPUs")
        kv_dtype = "bf16"
        manifest = re.search(r"([\w-]+/mpijob\.yaml)", profile)
        if manifest:
            job = next((j for j in jobs if j["rel"].endswith(manifest.group(1))), None)
            if job is None:
                e("profile", f"no MPIJob in {manifest.group(1)}")
            else:
                seen.add(job["rel"])
                options = job["options"]
                expect = {"model": os.path.basename(options["model"].rstrip("/")),
                          "weights": options.get("--weight-dtype", "bf16"),
                          "tp × pp": (job["tp"], job["pp"]), "GPUs": job["workers"]}
                got = {"model": model, "weights": dtype, "tp × pp": (tp, pp), "GPUs": count}
                for key in expect:
                    if expect[key] != got[key]:
                        e(key, f"{got[key]}, but {job['rel']} has {expect[key]}")
                label = GPUS.get(job["product"])
                if label is None:
                    e("GPUs", f"{job['rel']}: unknown {GPU_LABEL} {job['product']!r}")
                elif label != (gpu, mib):
                    e("GPUs", f"{gpu} ({mib:,} MiB), but {job['rel']} selects "
                      f"{job['product']} = {label[0]} ({label[1]:,} MiB)")
                kv_dtype = options.get("--kv-cache-dtype", "f32")
        config = os.path.join(self.root, "examples", "configs", model, "config.json")
        try:
            with open(config) as stream:
                model_config = load_model(json.load(stream))
        except (OSError, ValueError, KeyError) as error:
            e("model", f"cannot read {os.path.relpath(config, self.root)}: {error}")
            return
        if dtype not in ("bf16", "int8", "int4"):
            e("weights", f"{dtype!r}: expected bf16, int8 or int4")
            return
        try:
            ranks = rank_sizes(model_config, tp, pp, dtype, KV_BYTES[kv_dtype])
        except ValueError as error:
            e("tp × pp", str(error))
            return
        weights = max(r["weights"] for r in ranks)
        kv = max(r["kv"] for r in ranks)
        budget = mib * (1 << 20) * (100 - RESERVE_PERCENT) // 100
        fits = all(r["weights"] < budget for r in ranks)
        tokens = min((budget - r["weights"]) // r["kv"] for r in ranks) if fits else None
        gib = f"{weights / (1 << 30):.2f} GiB"
        if first_number(wcell) != weights or gib not in wcell:
            e("weight bytes", f"{wcell!r}, computed {weights:,} ({gib})")
        if first_number(kvcell) != kv:
            e("KV-cache bytes", f"{kvcell!r}, computed {kv:,}")
        if tokens is None:
            if "does not fit" not in tokcell:
                e("tokens", f"{tokcell!r}, computed: does not fit")
        else:
            if first_number(tokcell) != tokens:
                e("tokens", f"{tokcell!r}, computed {tokens:,}")
            if first_number(seqcell) != tokens // CONTEXT:
                e("sequences", f"{seqcell!r}, computed {tokens // CONTEXT:,}")

    def run(self, doc_path):
        self.load()
        compiles = self.compiles()
        jobs = []
        for rel, index, doc in self.docs:
            if doc.get("kind") == "MPIJob":
                job = self.check_mpijob(rel, index, doc, compiles)
                if job:
                    jobs.append(job)
        if doc_path:
            self.check_doc(doc_path, jobs)
        return jobs


# -- helpers -------------------------------------------------------------------
def get(node, *keys):
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def display(path, root):
    """path relative to the repository root when it is inside it."""
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def number(text):
    return int(text.replace(",", ""))


def first_number(text):
    m = re.search(r"\d[\d,]*", text)
    return number(m.group(0)) if m else None


def gpu_count(container):
    """The container's GPUs (limits; requests must agree), None if they differ."""
    resources = container.get("resources") or {}
    limit = (resources.get("limits") or {}).get(GPU_RESOURCE)
    request = (resources.get("requests") or {}).get(GPU_RESOURCE)
    if limit is not None and request is not None and str(limit) != str(request):
        return None
    value = limit if limit is not None else request
    return int(str(value)) if value is not None else 0


def commands(container):
    """The simple commands a container runs, as word lists: its command + args,
    or each command of a `sh -c SCRIPT`."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    if len(words) >= 3 and os.path.basename(words[0]) in SHELLS and words[1] == "-c":
        return script_commands(words[2])
    return [words] if words else []


def script_commands(script):
    found = []
    for line in script.replace("\\\n", " ").split("\n"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        command = []
        for token in tokens + [";"]:
            if token in (";", "&&", "||", "|", "&"):
                while command and (command[0] in ("exec", "env")
                                   or re.match(r"^[A-Za-z_]\w*=", command[0])):
                    command.pop(0)
                if command:
                    found.append(command)
                command = []
            else:
                command.append(token)
    return found


MPIRUN_VALUES = {"-np": 1, "-n": 1, "--np": 1, "--n": 1, "-c": 1, "--map-by": 1,
                 "-map-by": 1, "--bind-to": 1, "-bind-to": 1, "--rank-by": 1,
                 "--mca": 2, "-mca": 2, "-x": 1, "--hostfile": 1, "-hostfile": 1,
                 "--machinefile": 1, "-H": 1, "--host": 1, "-host": 1, "--npernode": 1,
                 "-npernode": 1, "--wdir": 1, "-wdir": 1}


def parse_mpirun(words):
    """(-np, program, program arguments)."""
    count, i = None, 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            return count, word, words[i + 1:]
        name, _, inline = word.partition("=")
        arity = MPIRUN_VALUES.get(name, 0)
        if name in ("-np", "-n", "--np", "--n", "-c"):
            value = inline or (words[i + 1] if i + 1 < len(words) else "")
            count = int(value) if value.isdigit() else -1
        i += 1 + (0 if inline else arity)
    return count, None, []


COMPILE_VALUES = {"-o", "--tp", "--pp", "--weight-dtype", "--kv-cache-dtype", "--mcpu",
                  "--mtriple", "--mattr", "--target", "--emit", "--parallel-chunks",
                  "--tile-rows", "--tile-cols", "--tile-depth", "--attention-rows",
                  "--attention-keys", "--llvm-opt"}


def parse_compile(words):
    options, i = {}, 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=")
        if word.startswith("-") and name in COMPILE_VALUES:
            if eq:
                options[name] = inline
            elif i + 1 < len(words):
                options[name] = words[i + 1]
                i += 1
        elif not word.startswith("-") and "model" not in options:
            options["model"] = word
        i += 1
    return options


# -- the parallel plan (lib/Transforms/ParallelPlan.cpp) and its bytes ---------
def load_model(c):
    h, heads = c["hidden_size"], c["num_attention_heads"]
    new_arch = c.get("new_decoder_architecture", False)
    if new_arch:
        kv, layout = c["num_kv_heads"], "grouped"
    elif c.get("multi_query", True):
        kv, layout = 1, "multi_query"
    else:
        kv, layout = heads, "per_head"
    parallel = c.get("parallel_attn", True)
    norms = c.get("num_ln_in_parallel_attn")
    if not parallel or (new_arch and norms is None):
        norms = 2
    return dict(vocab=c["vocab_size"], h=h, layers=c["num_hidden_layers"], heads=heads,
                kv=kv, d=h // heads, ffn=c.get("ffn_hidden_size") or 4 * h, layout=layout,
                norms=norms or 1, bias=c.get("bias", False), parallel=parallel,
                tied=c.get("tie_word_embeddings", True))


def split_evenly(total, parts, index):
    base, extra = divmod(total, parts)
    return index * base + min(index, extra), base + (1 if index < extra else 0)


def plan(m, tp, pp):
    """Per tensor slot: heads, KV heads, FFN columns, vocabulary rows, QKV rows;
    per stage: its layer count (ParallelPlan.cpp's rules)."""
    groups, per_group = m["kv"], m["heads"] // m["kv"]
    if tp > m["heads"] or pp > m["layers"]:
        raise ValueError(f"{tp} × {pp} exceeds {m['heads']} heads or {m['layers']} layers")
    slots = []
    for slot in range(tp):
        if tp <= groups:
            kv = split_evenly(groups, tp, slot)[1]
            heads = kv * per_group
        else:
            group, index = 0, slot
            while index >= split_evenly(tp, groups, group)[1]:
                index -= split_evenly(tp, groups, group)[1]
                group += 1
            ranks_in_group = split_evenly(tp, groups, group)[1]
            if ranks_in_group > per_group:
                raise ValueError(f"tp {tp} puts {ranks_in_group} ranks on a KV group of "
                                 f"{per_group} heads")
            kv, heads = 1, split_evenly(per_group, ranks_in_group, index)[1]
        qkv = {"per_head": 3 * heads, "multi_query": heads + 2,
               "grouped": heads + 2 * kv}[m["layout"]] * m["d"]
        slots.append(dict(kv=kv, heads=heads, qkv=qkv, ffn=split_evenly(m["ffn"], tp, slot)[1],
                          vocab=split_evenly(m["vocab"], tp, slot)[1]))
    layer_cost = m["h"] * ((m["heads"] + 2 * groups) * m["d"] + m["heads"] * m["d"] + 2 * m["ffn"])
    head_cost = m["h"] * m["vocab"] / layer_cost
    layers = m["layers"]
    best = [[math.inf] * (layers + 1) for _ in range(pp + 1)]
    take = [[0] * (layers + 1) for _ in range(pp + 1)]
    best[pp][layers] = 0
    for stage in range(pp - 1, -1, -1):
        extra = head_cost if stage == pp - 1 else 0.0
        for first in range(layers - 1, -1, -1):
            for count in range(1, layers - first + 1):
                cost = max(count + extra, best[stage + 1][first + count])
                # Ties go to the longer stage: earlier stages carry more layers.
                if cost <= best[stage][first] + 1e-9:
                    best[stage][first], take[stage][first] = cost, count
    stages, first = [], 0
    for stage in range(pp):
        stages.append(take[stage][first])
        first += take[stage][first]
    return slots, stages


def matrix_bytes(rows, cols, dtype):
    """bf16: 2 B a weight. int8 (planned): 1 B a weight + a bf16 scale per row.
    int4 (planned): 0.5 B a weight + a bf16 scale per row and group of 128."""
    if dtype == "bf16":
        return 2 * rows * cols
    if dtype == "int8":
        return rows * cols + 2 * rows
    return rows * cols // 2 + 2 * rows * math.ceil(cols / 128)


def rank_sizes(m, tp, pp, dtype, kv_bytes):
    """Weight bytes and KV-cache bytes per token of every rank (LayerNorms stay bf16)."""
    slots, stages = plan(m, tp, pp)
    h, d = m["h"], m["d"]
    ranks = []
    for rank in range(tp * pp):
        slot, stage = slots[rank % tp], rank // tp
        layer = (matrix_bytes(slot["qkv"], h, dtype) + matrix_bytes(h, slot["heads"] * d, dtype)
                 + matrix_bytes(slot["ffn"], h, dtype) + matrix_bytes(h, slot["ffn"], dtype)
                 + 2 * 2 * h * m["norms"])
        if m["bias"]:
            layer += 2 * (slot["qkv"] + slot["ffn"] + 2 * h)
        weights = stages[stage] * layer
        if stage == 0:
            weights += matrix_bytes(slot["vocab"], h, dtype)           # embedding rows
        if stage == pp - 1:
            if pp > 1 or not m["tied"]:
                weights += matrix_bytes(slot["vocab"], h, dtype)       # LM head rows
            weights += 2 * 2 * h                                       # ln_f
        # One all-reduce per parallel block (two per sequential one) and one
        # for the vocab-parallel embedding; activations are f32 (4 bytes).
        all_reduces = 0
        if tp > 1:
            all_reduces = stages[stage] * (1 if m["parallel"] else 2) + (stage == 0)
        ranks.append(dict(weights=weights, kv=2 * stages[stage] * slot["kv"] * d * kv_bytes,
                          layers=stages[stage], heads=slot["heads"], kv_heads=slot["kv"],
                          vocab=slot["vocab"], all_reduces=all_reduces,
                          all_reduce_bytes=all_reduces * h * 4,
                          send=h * 4 if stage < pp - 1 else 0, recv=h * 4 if stage > 0 else 0))
    return ranks


PLAN_FIELDS = {"weights": "weight_bytes", "kv": "kv_cache_bytes_per_token",
               "layers": "num_layers", "heads": "num_heads", "kv_heads": "num_kv_heads",
               "vocab": "vocab_size", "all_reduces": "all_reduces_per_token",
               "all_reduce_bytes": "all_reduce_bytes_per_token",
               "send": "send_bytes_per_token", "recv": "recv_bytes_per_token"}


def compare_plan(root, spec, errors):
    """MODEL=FILE: FILE is `falcon-compile MODEL --tp T --pp P --kv-cache-dtype=bf16
    --print-plan=json`; every rank's numbers must equal this script's (bf16 weights)."""
    model, _, path = spec.partition("=")
    try:
        with open(os.path.join(root, "examples", "configs", model, "config.json")) as stream:
            m = load_model(json.load(stream))
        with open(path) as stream:
            report = json.load(stream)
        ranks = rank_sizes(m, report["tp"], report["pp"], "bf16", KV_BYTES["bf16"])
    except (OSError, ValueError, KeyError) as error:
        errors.append(f"--compare-plan {spec}: {error}")
        return None
    if len(ranks) != len(report["ranks"]):
        errors.append(f"{path}: {len(report['ranks'])} ranks, computed {len(ranks)}")
        return None
    for ours, theirs in zip(ranks, report["ranks"]):
        for key, field in PLAN_FIELDS.items():
            if ours[key] != theirs.get(field):
                errors.append(f"{path}: rank {theirs.get('rank')}: {field}: falcon-compile "
                              f"says {theirs.get(field)}, this script computes {ours[key]}")
    return f"plan {model} tp {report['tp']} x pp {report['pp']}: {len(ranks)} ranks agree " \
           f"with falcon-compile --print-plan=json"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the repository root")
    parser.add_argument("--manifests", help="default: ROOT/deploy/k8s")
    parser.add_argument("--doc", help="default: ROOT/docs/deploy.md")
    parser.add_argument("--no-doc", action="store_true", help="skip the arithmetic table")
    parser.add_argument("--compare-plan", action="append", default=[], metavar="MODEL=FILE",
                        help="compare with falcon-compile MODEL --print-plan=json "
                             "--kv-cache-dtype=bf16 output")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    checker = Checker(root, os.path.abspath(args.manifests or os.path.join(root, "deploy", "k8s")))
    doc = None if args.no_doc else (args.doc or os.path.join(root, "docs", "deploy.md"))
    jobs = checker.run(doc)
    compared = [compare_plan(root, spec, checker.errors) for spec in args.compare_plan]
    if checker.errors:
        for message in checker.errors:
            print("error: " + message, file=sys.stderr)
        print(f"check_manifests.py: {len(checker.errors)} problem(s)", file=sys.stderr)
        return 1
    for job in jobs:
        print(f"{job['rel']}: MPIJob {job['name']}: {job['workers']} workers x 1 GPU, "
              f"mpirun -np {job['workers']}, gang {job['workers'] + 1}, "
              f"tp {job['tp']} x pp {job['pp']}, {job['artifact']}")
    for line in compared:
        print(line)
    print(f"check_manifests.py: {len(checker.docs)} documents, {len(jobs)} MPIJobs: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

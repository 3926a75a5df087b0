#!/usr/bin/env python3
"""edgekd device kit: build and benchmark exported models ON THE TARGET, with only a runtime.

Copy a run's ``export/`` folder and this file to the device, then:

    python3 edgekd_kit.py info
    python3 edgekd_kit.py build-engine student.onnx --precision fp16 --batch 1
    python3 edgekd_kit.py bench-dir . --target jetson-orin-nano --out results.json
    python3 edgekd_kit.py eval-images student.onnx --images val/    # accuracy on your own images
    # back on the workstation:
    edgekd report runs/<name> --import results.json

Needs Python 3.8+, numpy, and whichever runtime the device has: onnxruntime, openvino,
or TensorRT (Python bindings with cuda-python or pycuda, or the ``trtexec`` tool).
It never imports torch or edgekd. Results are JSON in edgekd's latency-record schema,
labelled ``measured`` on the named target, with accuracy on the validation bundle
(``validation.npz``, written by ``edgekd export``) when it is present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA = "edgekd-kit-results/2"  # 2: "runtime" / "runtime_version" (1 said "backend")
# file suffix -> (format, runtime): a copy of edgekd's formats table (edgekd/core/formats.py),
# kept equal by a test, since this file imports nothing of edgekd
SUFFIX_FORMAT = {".onnx": ("onnx", "onnxruntime"), ".xml": ("openvino", "openvino"),
                 ".engine": ("tensorrt", "tensorrt"), ".plan": ("tensorrt", "tensorrt")}
TRTEXEC_PATHS = ("trtexec", "/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")


# ---------------------------------------------------------------- environment
def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "?")).split("-")[0]


def find_trtexec() -> str | None:
    for p in TRTEXEC_PATHS:
        found = shutil.which(p) or (p if os.path.exists(p) else None)
        if found:
            return found
    return None


def host_info() -> dict:
    info = {"machine": platform.machine(), "system": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "onnxruntime": _version("onnxruntime"), "openvino": _version("openvino"),
            "tensorrt": _version("tensorrt"), "trtexec": find_trtexec()}
    model = Path("/proc/device-tree/model")
    if model.exists():
        info["board"] = model.read_text(errors="ignore").strip("\x00\n ")
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.lower().startswith(("model name", "hardware"))), "")
    except OSError:
        pass
    return info


# ---------------------------------------------------------------- runners
class OrtRunner:
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        providers = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in ort.get_available_providers()
                     and os.environ.get("EDGEKD_ORT_GPU")] + ["CPUExecutionProvider"]
        self.sess = ort.InferenceSession(str(path), so, providers=providers)
        self.name = self.sess.get_inputs()[0].name
        self.version = ort.__version__
        self.threads = threads
        self.device = "cpu" if providers[0] == "CPUExecutionProvider" else providers[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.name: x})[0]


def _signal_stack(restore=None):
    """Read (or restore) this thread's alternate signal stack. OpenVINO's compile_model leaves one
    it later frees, and the next Ctrl-C then kills Python with SIGSEGV (same fix as edgekd's)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    class StackT(ctypes.Structure):
        _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]

    libc = ctypes.CDLL(None)
    if restore is not None:
        libc.sigaltstack(ctypes.byref(restore), None)
        return None
    now = StackT()
    return now if libc.sigaltstack(None, ctypes.byref(now)) == 0 else None


class OpenVINORunner:
    runtime = "openvino"

    def __init__(self, path: Path, threads: int | None, precision: str, device: str = "CPU") -> None:
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(str(path))
        self.config = {"PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_PRECISION_HINT": {"fp16": "f16"}.get(precision, "f32")}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.ov_device = device
        self.requests: dict = {}
        self.version = ov.__version__.split("-")[0]
        self.threads = threads
        self.device = device.lower()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        req = self.requests.get(x.shape)
        if req is None:
            m = self.model.clone()
            m.reshape({m.inputs[0].any_name: list(x.shape)})
            stack = _signal_stack()
            try:
                req = self.requests[x.shape] = self.core.compile_model(m, self.ov_device, self.config).create_infer_request()
            finally:
                _signal_stack(stack)
        req.infer({0: x})
        return req.get_output_tensor(0).data.copy()


class _CudaMem:
    """Device buffers through cuda-python or pycuda (whichever the device has)."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.8
        except ImportError:
            try:
                from cuda import cudart  # older cuda-python
            except ImportError:
                cudart = None
        self.cudart = cudart
        if cudart is None:
            import pycuda.autoinit  # noqa: F401
            import pycuda.driver as drv

            self.drv = drv

    def alloc(self, nbytes: int) -> int:
        if self.cudart is not None:
            err, ptr = self.cudart.cudaMalloc(nbytes)
            return int(ptr)
        return int(self.drv.mem_alloc(nbytes))

    def h2d(self, ptr: int, arr: np.ndarray) -> None:
        if self.cudart is not None:
            self.cudart.cudaMemcpy(ptr, arr.ctypes.data, arr.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
        else:
            self.drv.memcpy_htod(ptr, arr)

    def d2h(self, arr: np.ndarray, ptr: int) -> None:
        if self.cudart is not None:
            self.cudart.cudaMemcpy(arr.ctypes.data, ptr, arr.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        else:
            self.drv.memcpy_dtoh(arr, ptr)

    def sync(self) -> None:
        if self.cudart is not None:
            self.cudart.cudaDeviceSynchronize()
        else:
            self.drv.Context.synchronize()


class TensorRTRunner:
    """Runs a serialized engine; timings include the host<->device copies (what an app pays)."""

    runtime = "tensorrt"

    def __init__(self, path: Path) -> None:
        import tensorrt as trt

        self.trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not load {path} (built for another device or TensorRT version?)")
        self.ctx = self.engine.create_execution_context()
        self.mem = _CudaMem()
        self.version = trt.__version__
        self.threads = None
        self.device = "cuda"
        self.v10 = hasattr(self.engine, "num_io_tensors")
        if self.v10:
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.inp = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
            self.out = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.buffers: dict = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        key = x.shape
        if key not in self.buffers:
            if self.v10:
                self.ctx.set_input_shape(self.inp, x.shape)
                out_shape = tuple(self.ctx.get_tensor_shape(self.out))
            else:
                self.ctx.set_binding_shape(0, x.shape)
                out_shape = tuple(self.ctx.get_binding_shape(1))
            out = np.empty(out_shape, dtype=np.float32)
            self.buffers[key] = (self.mem.alloc(x.nbytes), self.mem.alloc(out.nbytes), out)
        d_in, d_out, out = self.buffers[key]
        self.mem.h2d(d_in, x)
        if self.v10:
            self.ctx.set_input_shape(self.inp, x.shape)
            self.ctx.set_tensor_address(self.inp, d_in)
            self.ctx.set_tensor_address(self.out, d_out)
            self.ctx.execute_async_v3(0)
        else:
            self.ctx.set_binding_shape(0, x.shape)
            self.ctx.execute_v2([d_in, d_out])
        self.mem.sync()
        self.mem.d2h(out, d_out)
        return out.copy()


# ---------------------------------------------------------------- engine building
def trtexec_command(onnx: str, engine: str, precision: str, shape: tuple, max_batch: int, trt_major: int,
                    trtexec: str = "trtexec") -> list[str]:
    """The trtexec call edgekd prints: explicit Q/DQ for INT8, dynamic batch profile."""
    dims = "x".join(str(d) for d in shape[1:])
    cmd = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}",
           f"--minShapes=input:1x{dims}", f"--optShapes=input:{shape[0]}x{dims}", f"--maxShapes=input:{max_batch}x{dims}"]
    if precision == "fp16":
        cmd.append("--fp16")
    elif precision == "int8":  # the Q/DQ nodes decide what is INT8
        cmd += ["--stronglyTyped"] if trt_major >= 10 else ["--int8", "--fp16"]
    return cmd


def onnx_input_shape(path: Path, batch: int) -> tuple:
    try:
        import onnx

        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        return (batch, *[d.dim_value for d in dims[1:]])
    except ImportError:
        meta = Path(path).with_suffix(".json")
        if meta.exists():
            return (batch, *json.loads(meta.read_text())["input_shape"][1:])
        raise SystemExit("need the onnx package or the export's <model>.json sidecar to read the input shape") from None


def build_engine(onnx: Path, precision: str, batch: int, max_batch: int, out: Path, workspace_mb: int) -> dict:
    """Build with the TensorRT Python API if present, else with trtexec."""
    shape = onnx_input_shape(onnx, batch)
    t0 = time.perf_counter()
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    if trt is not None:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        major = int(trt.__version__.split(".")[0])
        flags = 0
        if major < 10:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        elif precision == "int8":
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(Path(onnx).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise SystemExit(f"TensorRT could not parse {onnx}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        if precision == "fp16" or (precision == "int8" and major < 10):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8" and major < 10:
            config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()
        name = network.get_input(0).name
        profile.set_shape(name, (1, *shape[1:]), shape, (max_batch, *shape[1:]))
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise SystemExit(f"TensorRT failed to build an engine from {onnx} ({precision})")
        out.write_bytes(bytes(plan))
        how = f"tensorrt {trt.__version__} python API"
    else:
        exe = find_trtexec()
        if exe is None:
            raise SystemExit("neither the tensorrt Python package nor trtexec was found on this device")
        ver = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
        m = re.search(r"TensorRT.*?v?(\d+)", ver)
        cmd = trtexec_command(str(onnx), str(out), precision, shape, max_batch, int(m.group(1)) if m else 10, exe)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"trtexec failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        how = " ".join(cmd)
    return {"engine": str(out), "precision": precision, "seconds": round(time.perf_counter() - t0, 1), "how": how}


# ---------------------------------------------------------------- benchmarking
def describe(path: Path, index: dict) -> dict:
    """model / format / precision of an artifact: from exports.json, else from its name."""
    rel = path.name
    for e in index.values():
        if e.get("path") and Path(e["path"]).name == rel:
            return {"model": e["model"], "format": e["format"], "precision": e["precision"]}
    m = re.match(r"(?P<model>[a-z_]+?)(?:_(?P<prec>fp32|fp16|int8))?(?:_[\w-]+)?\.(?P<ext>onnx|xml|engine|plan)$", rel)
    fmt = SUFFIX_FORMAT[path.suffix][0]
    return {"model": m.group("model") if m else path.stem, "format": fmt,
            "precision": (m.group("prec") if m and m.group("prec") else "fp32")}


def make_runner(path: Path, runtime: str, precision: str, threads: int | None):
    suffix = path.suffix
    if runtime == "auto":
        runtime = SUFFIX_FORMAT[suffix][1]
    if runtime == "onnxruntime":
        return OrtRunner(path, threads)
    if runtime == "openvino":
        return OpenVINORunner(path, threads, precision)
    return TensorRTRunner(path)


def percentile(vals: list, q: float) -> float:
    s = sorted(vals)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ---------------------------------------------------------------- preprocessing (the model's recorded contract)
PIL_FILTERS = {"nearest": 0, "bilinear": 2, "bicubic": 3}  # PIL.Image.Resampling values


def preprocess_image(img, prep: dict) -> np.ndarray:
    """A PIL image → the model's float input [3, H, W], exactly as edgekd decoded it.

    The same steps as timm/torchvision on PIL images (Resize then CenterCrop): ``crop`` scales
    the shorter side to floor(size / crop_fraction) (the longer side truncated in proportion)
    and crops the centre; ``squash`` scales both sides to it. Then pixel / 255, channel order,
    (x - mean) / std.
    """
    size = int(prep["size"][0])
    scale = int(size / float(prep.get("crop_fraction", 1.0)))  # floor, as timm
    img = img.convert("RGB")
    w, h = img.size
    if prep.get("resize") == "crop":
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(scale * long / short)
        new_w, new_h = (scale, new_long) if w <= h else (new_long, scale)
    else:
        new_w = new_h = scale
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), PIL_FILTERS[prep.get("interpolation", "bilinear")])
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    return normalize(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)[None], prep)[0]


def normalize(images: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 [N, 3, H, W] RGB → the model's float input (mean/std in RGB order; BGR reverses after)."""
    mean = np.asarray(prep["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(prep["std"], np.float32).reshape(1, -1, 1, 1)
    x = (images.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(x[:, ::-1] if prep.get("channels") == "BGR" else x, dtype=np.float32)


def model_meta(folder: Path, model: str) -> dict | None:
    meta = folder / f"{model}.json"
    return json.loads(meta.read_text()) if meta.exists() else None


def validate(runner, bundle: dict, model: str, meta: dict | None = None) -> dict:
    """Accuracy on the validation bundle, and agreement with the PyTorch logits edgekd stored.

    With the model's recorded preprocessing and the bundle's raw images, the inputs are made
    here from the images (so a wrong mean/std/channel order in the record shows up as lost accuracy).
    """
    x, y = bundle["inputs"], bundle["labels"]
    if meta is not None and "images" in bundle and meta.get("preprocessing", {}).get("mean"):
        x = normalize(bundle["images"], meta["preprocessing"])
    out = np.concatenate([runner(x[i:i + 64]) for i in range(0, len(x), 64)])
    res = {"samples": int(len(x)), "accuracy": round(float((out.argmax(1) == y).mean() * 100), 3)}
    ref = bundle.get(f"logits_{model}")
    if ref is not None:
        res["top1_agreement"] = float((out.argmax(1) == ref.argmax(1)).mean())
        res["max_abs_diff"] = float(np.abs(out - ref).max())
        res["torch_accuracy"] = round(float((ref.argmax(1) == y).mean() * 100), 3)
    return res


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


def bench(paths: list, args: argparse.Namespace, index: dict, bundle: dict | None) -> list:
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loaded = []
    for p in paths:
        d = describe(p, index)
        runtimes = [args.runtime] if args.runtime != "auto" or p.suffix != ".onnx" else ["onnxruntime"]
        for b in runtimes:
            before = rss_mb()
            try:
                runner = make_runner(p, b, d["precision"], args.threads)
            except Exception as exc:  # a missing runtime or an engine from another device: report, go on
                print(f"skip {p.name} ({b}): {exc}", file=sys.stderr)
                continue
            shape = onnx_input_shape(p, args.batch) if p.suffix == ".onnx" else None
            if shape is None:
                meta = p.parent / f"{d['model']}.json"
                size = json.loads(meta.read_text())["input_shape"][1:] if meta.exists() else [3, 32, 32]
                shape = (args.batch, *size)
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            for _ in range(args.warmup):
                runner(x)
            after = rss_mb()
            d = {**d, "rss_increase_mb": round(after - before, 2) if before is not None and after is not None else None}
            loaded.append((p, d, runner, x))
    samples = [[] for _ in loaded]
    for _ in range(args.rounds):
        for i, (_, _, runner, x) in enumerate(loaded):
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                runner(x)
                samples[i].append((time.perf_counter() - t0) * 1e3)
    records = []
    for (p, d, runner, x), s in zip(loaded, samples):  # noqa: B905 (the kit supports Python 3.8)
        med = statistics.median(s)
        rec = {"model": d["model"], "runtime": runner.runtime, "format": d["format"], "precision": d["precision"],
               "batch_size": int(x.shape[0]), "threads": runner.threads, "device": runner.device,
               "target": args.target, "kind": "measured", "median_ms": round(med, 5),
               "p90_ms": round(percentile(s, 90), 5), "p99_ms": round(percentile(s, 99), 5),
               "mean_ms": round(statistics.fmean(s), 5), "throughput_ips": round(x.shape[0] / med * 1e3, 2),
               "samples": len(s), "runtime_version": runner.version, "artifact": p.name,
               "rss_increase_mb": d["rss_increase_mb"],
               "notes": "device kit; includes host<->device copies" if runner.runtime == "tensorrt" else "device kit"}
        if bundle is not None:
            rec["validation"] = validate(runner, bundle, d["model"], model_meta(p.parent, d["model"]))
        records.append(rec)
    return records


def cmd_bench(args: argparse.Namespace) -> None:
    paths = [Path(p) for p in args.paths]
    folder = paths[0].parent if paths else Path(".")
    index = _exports_index(folder)
    bundle = _bundle(Path(args.validation) if args.validation else folder / "validation.npz")
    _write(args, bench(paths, args, index, bundle))


def cmd_bench_dir(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    index = _exports_index(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix in SUFFIX_FORMAT)
    if args.only:
        paths = [p for p in paths if p.suffix in {f".{s}" for s in args.only.split(",")}]
    bundle = _bundle(folder / "validation.npz")
    _write(args, bench(paths, args, index, bundle))


def cmd_eval_images(args: argparse.Namespace) -> None:
    """Accuracy of one model file on a folder of class sub-folders, preprocessed as recorded."""
    from PIL import Image

    path = Path(args.model)
    d = describe(path, _exports_index(path.parent))
    meta = model_meta(path.parent, d["model"])
    if meta is None:
        raise SystemExit(f"no {d['model']}.json beside {path}: it holds the preprocessing and class names")
    classes, prep = meta["classes"], meta["preprocessing"]
    root = Path(args.images)
    files = [(f, classes.index(c.name)) for c in sorted(root.iterdir()) if c.is_dir() and c.name in classes
             for f in sorted(c.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    unknown = sorted(c.name for c in root.iterdir() if c.is_dir() and c.name not in classes)
    if unknown:
        raise SystemExit(f"{root} has class folders the model does not know: {unknown[:5]}")
    files = files[: args.limit] if args.limit else files
    runner = make_runner(path, args.runtime, d["precision"], args.threads)
    correct = 0
    for i in range(0, len(files), 32):
        chunk = files[i:i + 32]
        x = np.stack([preprocess_image(Image.open(f), prep) for f, _ in chunk])
        correct += int((runner(x).argmax(1) == np.asarray([c for _, c in chunk])).sum())
    res = {"model": d["model"], "artifact": path.name, "runtime": runner.runtime, "images": len(files),
           "accuracy": round(100.0 * correct / max(1, len(files)), 3), "preprocessing": prep}
    print(json.dumps(res, indent=2))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _exports_index(folder: Path) -> dict:
    f = folder / "exports.json"
    return {i: e for i, e in enumerate(json.loads(f.read_text()))} if f.exists() else {}


def _bundle(path: Path) -> dict | None:
    if not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _write(args: argparse.Namespace, records: list) -> None:
    doc = {"schema": SCHEMA, "target": args.target, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": host_info(), "command": " ".join(sys.argv), "results": records}
    text = json.dumps(doc, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {len(records)} results to {args.out}")
    else:
        print(text)
    for r in records:
        acc = f"  acc {r['validation']['accuracy']:.2f}%" if "validation" in r else ""
        print(f"{r['model']:>10} {r['format']:>9} {r['precision']:>5} {r['runtime']:>12}: "
              f"{r['median_ms']:.3f} ms median (p90 {r['p90_ms']:.3f}){acc}", file=sys.stderr)


def main(argv: list | None = None) -> None:
    ap = argparse.ArgumentParser(prog="edgekd_kit", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="runtimes and hardware on this device")
    b = sub.add_parser("build-engine", help="build a TensorRT engine from an ONNX file, on this device")
    b.add_argument("onnx")
    b.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--max-batch", type=int, default=None)
    b.add_argument("--out", default=None)
    b.add_argument("--workspace-mb", type=int, default=1024)
    for name, helptext in (("bench", "benchmark model files"), ("bench-dir", "benchmark every model in an export folder")):
        p = sub.add_parser(name, help=helptext)
        if name == "bench":
            p.add_argument("paths", nargs="+")
            p.add_argument("--validation", default=None, help="validation.npz (default: next to the models)")
        else:
            p.add_argument("folder", nargs="?", default=".")
            p.add_argument("--only", default=None, help="suffixes to include, e.g. engine,xml")
        p.add_argument("--target", required=True, help="the profile name this device is, e.g. jetson-orin-nano")
        p.add_argument("--runtime", "--backend", dest="runtime", default="auto", choices=["auto", "onnxruntime", "openvino", "tensorrt"])
        p.add_argument("--batch", type=int, default=1)
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--warmup", type=int, default=10)
        p.add_argument("--repeats", type=int, default=50)
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--out", default=None)
    e = sub.add_parser("eval-images", help="accuracy of a model on a folder of class sub-folders (needs Pillow)")
    e.add_argument("model")
    e.add_argument("--images", required=True, help="a folder with one sub-folder per class")
    e.add_argument("--runtime", "--backend", dest="runtime", default="auto", choices=["auto", "onnxruntime", "openvino", "tensorrt"])
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "info":
        print(json.dumps(host_info(), indent=2))
    elif args.cmd == "build-engine":
        onnx = Path(args.onnx)
        out = Path(args.out) if args.out else onnx.with_name(f"{onnx.stem}_{args.precision}.engine")
        print(json.dumps(build_engine(onnx, args.precision, args.batch, args.max_batch or max(args.batch, 8), out,
                                      args.workspace_mb), indent=2))
    elif args.cmd == "bench":
        cmd_bench(args)
    elif args.cmd == "eval-images":
        cmd_eval_images(args)
    else:
        cmd_bench_dir(args)


if __name__ == "__main__":
    main()

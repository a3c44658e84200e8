"""Render bench/results/results.json as the Markdown tables of docs/benchmarks.md.

``python bench/report.py`` re-renders the last run without measuring again.
"""

from __future__ import annotations

from pathlib import Path

import json
import sys


RESULTS = Path(__file__).resolve().parent / "results"


def found(run: dict) -> str:
    return ", ".join(f"{d['label']} {d['score']:.2f}" for d in run["detections"])


def ms(entry: dict | None) -> str:
    return f"{entry['median_ms']:.1f}" if entry else "-"


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x"


def markdown(report: dict) -> str:
    machine = report["machine"]
    image = report["image"]
    lines = [
        f"Run {report['date']} with `{report['command']}`.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({', '.join(machine['simd']) or 'no AVX2'}), {machine['memory_gb']} GB, "
        f"{machine['os']}; Python {machine['python']}, ONNX Runtime "
        f"{machine['onnxruntime']}, OpenCV {machine['opencv']}, numpy "
        f"{machine['numpy']}. Load average before/after: "
        f"{machine['load_average_before'][0]:.2f} / "
        f"{machine['load_average_after'][0]:.2f}.",
        "",
        "Medians in milliseconds (p10-p90 in results.json).",
        "",
    ]
    for photo, runs in report.get("models", {}).items():
        lines += _models_table(photo, runs)
    if "inference" not in report:  # --models-only
        return "\n".join(lines) + "\n"
    for photo, runs in report["inference"].items():
        lines += _inference_table(photo, runs)
    lines += _decoding_table(report["decoding"], image)
    lines += _end_to_end_table(report)
    lines += _throughput_table(report["servers"])
    return "\n".join(lines) + "\n"


def _models_table(photo: str, runs: list[dict]) -> list[str]:
    """The catalogue's models side by side: latency relative to yolov3-tiny's."""
    ok = [run for run in runs if "error" not in run]
    tiny = next((run for run in ok if run["model"] == "yolov3-tiny"), None)
    lines = [
        f"### Models side by side, {photo} (onnx backend, in-process, batch 1, "
        "interleaved)",
        "",
        "| model | input | model only | predict | pipeline | vs yolov3-tiny "
        "| load | detections (score >= 0.25) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in ok:
        pipeline = run["pipeline"]["median_ms"]
        versus = ratio(pipeline, tiny["pipeline"]["median_ms"]) if tiny else "-"
        width, height = run.get("input_size", ("?", "?"))
        lines.append(
            f"| {run['model']} | {width}x{height} | {ms(run.get('model_only'))} "
            f"| {ms(run['predict'])} | {pipeline:.1f} | {versus} "
            f"| {run['load_ms']:.0f} | {found(run)} |"
        )
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['model']} | failed: {run['error']} |||||||")
    return [*lines, ""]


def _inference_table(photo: str, runs: list[dict]) -> list[str]:
    ok = [run for run in runs if "error" not in run]
    onnx = next((run for run in ok if run["backend"] == "onnx"), None)
    lines = [
        f"### In-process inference, {photo} (yolov3-tiny, 416x416, batch 1)",
        "",
        "| backend | runtime | model only | vs onnx | predict | pipeline "
        "| load | peak RSS MB | detections (score >= 0.25) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in ok:
        model_only = run.get("model_only")
        versus = (
            ratio(model_only["median_ms"], onnx["model_only"]["median_ms"])
            if model_only and onnx
            else "-"
        )
        lines.append(
            f"| {run['backend']} | {run['framework']} | {ms(model_only)} | {versus} "
            f"| {ms(run['predict'])} | {ms(run['pipeline'])} "
            f"| {run['load_ms']:.0f} | {run['peak_rss_mb']:.0f} | {found(run)} |"
        )
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['backend']} | failed: {run['error']} ||||||||")
    return [*lines, ""]


def _decoding_table(decoding: dict, image: dict) -> list[str]:
    width, height = image["size"]
    draft_w, draft_h = decoding["draft_size"]
    return [
        f"### Decoding the {width}x{height} JPEG ({image['bytes'] / 1e6:.2f} MB)",
        "",
        "| step | ms |",
        "|---|---|",
        f"| full decode ({width}x{height}) | {ms(decoding['full_decode'])} |",
        f"| reduced decode, `draft` ({draft_w}x{draft_h}) "
        f"| {ms(decoding['draft_decode'])} |",
        f"| letterbox to 416 from full size | {ms(decoding['letterbox_from_full'])} |",
        f"| letterbox to 416 from draft size "
        f"| {ms(decoding['letterbox_from_draft'])} |",
        "",
    ]


def _end_to_end_table(report: dict) -> list[str]:
    image = report["image"]["file"]
    onnx = next(
        run
        for run in report["inference"][image]
        if run["backend"] == "onnx" and "error" not in run
    )
    model_only = onnx["model_only"]["median_ms"]
    pipeline = onnx["pipeline"]["median_ms"]
    lines = [
        f"### End to end through gRPC, {image} (onnx server, 1 worker, loopback)",
        "",
        "| path | client ms | server-reported ms | vs in-process pipeline "
        "| vs model only |",
        "|---|---|---|---|---|",
        f"| model only, in-process | {model_only:.1f} | - | - | 1.00x |",
        f"| pipeline (decode + predict), in-process | {pipeline:.1f} | - | 1.00x "
        f"| {ratio(pipeline, model_only)} |",
    ]
    for rpc, entry in report["servers"][0]["end_to_end"].items():
        median = entry["median_ms"]
        lines.append(
            f"| gRPC `{rpc}` | {median:.1f} | {entry['server_median_ms']:.1f} "
            f"| {ratio(median, pipeline)} | {ratio(median, model_only)} |"
        )
    return [*lines, ""]


def _throughput_table(servers: list[dict]) -> list[str]:
    lines = [
        "### Throughput, concurrent clients (2 MB JPEG, onnx server, loopback)",
        "",
        "| server workers | clients | requests | images/s | median ms | p90 ms "
        "| errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        for level in server["throughput"]:
            latency = level["latency"]
            lines.append(
                f"| {server['workers']} | {level['clients']} | {level['requests']} "
                f"| {level['images_per_s']:.1f} | {latency['median_ms']:.0f} "
                f"| {latency['p90_ms']:.0f} | {level['errors']} |"
            )
    return [*lines, ""]


if __name__ == "__main__":
    print(markdown(json.loads((RESULTS / "results.json").read_text())))
    sys.exit(0)

"""The pure-Python ``_nms_gpu_post`` installed in place of ChainerCV's broken C one.

ChainerCV's GPU NMS runs a CUDA kernel that marks, per box, the later boxes it
overlaps; ``_nms_gpu_post`` then walks those marks. No GPU here, so the kernel is
emulated in numpy (:func:`kernel_mask`, a line-by-line port of ``nms_kernel``) and the
result must equal ChainerCV's own CPU NMS.
"""

from __future__ import annotations

from chainercv.utils.bbox import _nms_gpu_post as module
from chainercv.utils.bbox._nms_gpu_post import _nms_gpu_post
from chainercv.utils.bbox.non_maximum_suppression import _non_maximum_suppression_cpu
from pathlib import Path

import numpy as np
import pytest


THREADS_PER_BLOCK = 64  # what chainercv's _call_nms_kernel launches with


def kernel_mask(bbox: np.ndarray, thresh: float) -> tuple[np.ndarray, int]:
    """``nms_kernel``'s output for boxes in score order: bit ``j % 64`` of word
    ``i * col_blocks + j // 64`` is set when box ``j > i`` overlaps box ``i`` with
    IoU >= ``thresh`` (float32 arithmetic, as on the GPU)."""
    bbox = bbox.astype(np.float32)
    n_bbox = len(bbox)
    col_blocks = -(-n_bbox // THREADS_PER_BLOCK)
    top = np.maximum(bbox[:, None, 0], bbox[None, :, 0])
    bottom = np.minimum(bbox[:, None, 2], bbox[None, :, 2])
    left = np.maximum(bbox[:, None, 1], bbox[None, :, 1])
    right = np.minimum(bbox[:, None, 3], bbox[None, :, 3])
    zero = np.float32(0)
    inter = np.maximum(bottom - top, zero) * np.maximum(right - left, zero)
    area = (bbox[:, 2] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 1])
    iou = inter / (area[:, None] + area[None, :] - inter)
    mask = np.zeros(n_bbox * col_blocks, dtype=np.uint64)
    for i in range(n_bbox):
        for j in np.nonzero(iou[i] >= np.float32(thresh))[0]:
            if j > i:
                word = i * col_blocks + j // THREADS_PER_BLOCK
                mask[word] |= np.uint64(1) << np.uint64(j % THREADS_PER_BLOCK)
    return mask, col_blocks


def random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Clustered boxes, so that many overlap (y_min, x_min, y_max, x_max)."""
    centres = rng.uniform(0, 200, size=(max(count // 8, 1), 2))
    centre = centres[rng.integers(len(centres), size=count)]
    centre += rng.normal(0, 8, (count, 2))
    half = rng.uniform(5, 30, size=(count, 2))
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def test_the_installed_module_is_the_pure_python_one():
    assert Path(module.__file__).name == "_nms_gpu_post.py"


@pytest.mark.parametrize("count", [1, 2, 63, 64, 65, 130, 400])
@pytest.mark.parametrize("thresh", [0.3, 0.5, 0.7])
def test_equals_chainercv_cpu_nms_on_random_boxes(count, thresh):
    rng = np.random.default_rng(count * 10 + int(thresh * 10))
    bbox = random_boxes(rng, count)
    score = rng.uniform(size=count).astype(np.float32)
    expected = _non_maximum_suppression_cpu(bbox, thresh, score)

    # What _non_maximum_suppression_gpu does around the kernel, on the CPU.
    order = score.argsort()[::-1].astype(np.int32)
    mask, col_blocks = kernel_mask(bbox[order], thresh)
    selection, n_selection = _nms_gpu_post(mask, count, THREADS_PER_BLOCK, col_blocks)

    assert selection.dtype == np.int32 and selection.shape == (count,)
    np.testing.assert_array_equal(order[selection[:n_selection]], expected)
    assert 0 < n_selection <= count


def test_a_suppressed_box_suppresses_nothing():
    # 0 overlaps 1, 1 overlaps 2 and 70 (in the next 64-box block); 0 suppresses 1,
    # so 2 and 70 stay.
    n_bbox, col_blocks = 71, 2
    mask = np.zeros(n_bbox * col_blocks, dtype=np.uint64)
    mask[0 * col_blocks + 0] = np.uint64(1 << 1)
    mask[1 * col_blocks + 0] = np.uint64(1 << 2)
    mask[1 * col_blocks + 1] = np.uint64(1 << (70 - 64))
    mask[3 * col_blocks + 1] = np.uint64(1 << 63 | 1 << (69 - 64))
    selection, n_selection = _nms_gpu_post(mask, n_bbox, 64, col_blocks)
    kept = selection[:n_selection].tolist()
    assert kept == [i for i in range(n_bbox) if i not in (1, 69)]
    assert not selection[n_selection:].any()

"""The superpixel vote (sceneparse/refine/superpixels.py) that the refiner and the
flow-superpixels smoother share."""

import numpy as np

from sceneparse.refine.superpixels import superpixel_vote, upsample_segments


def _case():
    seg = np.zeros((4, 6), np.int64)
    seg[:, 3:] = 1  # two superpixels: left and right halves
    probs = np.zeros((2, 4, 6), np.float32)
    probs[0], probs[1] = 0.4, 0.6  # right half: unsure, class 1
    probs[:, :, :3] = np.array([0.9, 0.1], np.float32)[:, None, None]  # left half: sure, class 0
    probs[:, 0, 4] = [0.65, 0.35]  # one unsure pixel on the right leaning to class 0
    return probs, seg


def test_feature_exact_vote_keeps_sure_pixels_and_averages_the_rest():
    probs, seg = _case()
    out = superpixel_vote(probs, seg, confidence=0.8)
    assert np.array_equal(out[:, :, :3], probs[:, :, :3])  # sure: their own
    right = probs[:, :, 3:].reshape(2, -1).mean(1)
    assert np.allclose(out[:, 0, 4], right) and out[:, :, 3:].argmax(0).tolist() == [[1] * 3] * 4
    majority = superpixel_vote(probs, seg, confidence=1.0, mode="majority")
    assert np.allclose(majority[:, 0, 4], [1 / 12, 11 / 12])  # 1 of 12 right-half pixels wins class 0


def test_feature_small_superpixels_vote_like_full_size_ones():
    probs, seg = _case()
    big = np.repeat(np.repeat(probs, 2, 1), 2, 2)  # the same frame at twice the size
    full = superpixel_vote(big, upsample_segments(seg, big.shape[1:]), confidence=0.8)
    small = superpixel_vote(big, seg, confidence=0.8)  # superpixels at half the size
    assert small.shape == big.shape and np.allclose(small, full, atol=1e-6)
    assert not np.shares_memory(small, big)  # the caller's probabilities stay as they were

"""Registering colour to depth (sceneparse/sources/registration.py): a synthetic two-camera rig
with a known offset, and the real 7-Scenes frames."""

import itertools

import cv2
import numpy as np
import pytest

from sceneparse.errors import InputError
from sceneparse.sources import SevenScenesSource
from sceneparse.sources.registration import KINECT_7SCENES, ColorRegistration, edge_alignment, estimate_registration

K_DEPTH = np.array([[585.0, 0, 160], [0, 585.0, 120], [0, 0, 1]])
K_COLOR = np.array([[525.0, 0, 158], [0, 525.0, 121], [0, 0, 1]])
OFFSET = (-0.025, 0.004, 0.0)  # depth-camera point -> colour-camera point, metres


def _texture(x, y):
    """Grey level of a point of the scene's plane (metres in the depth camera's frame)."""
    return 127 + 120 * np.sin(40 * x) * np.cos(30 * y)


def _rig(z_of):
    """The colour camera's view of a scene whose depth (in the depth camera) is ``z_of(x/z, y/z)``,
    rendered by ray casting per colour pixel, and the depth camera's depth image and true colours."""
    h, w = 240, 320
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    # depth camera: its depth image and the grey level each of its pixels should see
    rx, ry = (u - K_DEPTH[0, 2]) / K_DEPTH[0, 0], (v - K_DEPTH[1, 2]) / K_DEPTH[1, 1]
    depth = z_of(rx, ry)
    truth = _texture(rx * depth, ry * depth)
    # colour camera: for a plane at depth z (constant here), a colour ray hits the depth-frame point minus the offset
    cx, cy = (u - K_COLOR[0, 2]) / K_COLOR[0, 0], (v - K_COLOR[1, 2]) / K_COLOR[1, 1]
    z = z_of(np.zeros(1), np.zeros(1))[0] - OFFSET[2]
    colour = _texture(cx * z - OFFSET[0], cy * z - OFFSET[1])
    rgb = np.repeat(np.clip(colour, 0, 255).astype(np.uint8)[..., None], 3, -1)
    return rgb, depth.astype(np.float32), truth


def test_registration_of_a_plane_matches_the_depth_cameras_view():
    colour, depth, truth = _rig(lambda rx, ry: np.full(np.broadcast(rx, ry).shape, 2.0))
    reg = ColorRegistration(K_COLOR, OFFSET)
    registered = reg.color_to_depth(colour, depth, K_DEPTH)[..., 0].astype(np.float64)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(registered - truth)[inner].mean() < 3  # grey levels, of 0-255
    stored = colour[..., 0].astype(np.float64)
    assert np.abs(stored - truth)[inner].mean() > 30  # as stored, the views differ


def test_identity_registration_changes_nothing_and_missing_depth_takes_the_nearest():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    depth = np.full((60, 80), 1.5, np.float32)
    depth[10:20, 10:30] = 0  # holes take the nearest reading
    k = np.array([[70.0, 0, 40], [0, 70.0, 30], [0, 0, 1]])
    assert np.array_equal(ColorRegistration(k).color_to_depth(image, depth, k), image)
    assert np.array_equal(ColorRegistration(k).color_to_depth(image, np.zeros_like(depth), k), image)


def test_exception_bad_colour_intrinsics():
    with pytest.raises(InputError, match="3x3"):
        ColorRegistration(np.eye(2))


def test_estimate_registration_finds_a_known_offset():
    """Scenes with depth jumps (a box in front of a wall) seen by the synthetic rig: the fit recovers
    the colour camera from edges alone."""
    frames = []
    for bx, by in [(-0.1, 0.0), (0.15, 0.05), (0.0, -0.1), (-0.2, 0.1)]:

        def z_of(rx, ry, bx=bx, by=by):
            box = (np.abs(rx * 1.2 - bx) < 0.12) & (np.abs(ry * 1.2 - by) < 0.1)
            return np.where(box, 1.2, 2.5)

        h, w = 240, 320
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        depth = z_of((u - K_DEPTH[0, 2]) / K_DEPTH[0, 0], (v - K_DEPTH[1, 2]) / K_DEPTH[1, 1]).astype(np.float32)
        # the colour image: flat grey box on a flat darker wall, rendered through the colour camera
        uc, vc = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        colour = np.full((h, w), 60.0)
        x = (uc - K_COLOR[0, 2]) / K_COLOR[0, 0] * 1.2 - OFFSET[0]  # the box's front, in the depth camera's frame
        y = (vc - K_COLOR[1, 2]) / K_COLOR[1, 1] * 1.2 - OFFSET[1]
        colour[(np.abs(x - bx) < 0.12) & (np.abs(y - by) < 0.1)] = 200.0
        rgb = cv2.cvtColor(cv2.GaussianBlur(colour, (0, 0), 0.7).astype(np.uint8), cv2.COLOR_GRAY2RGB)
        frames.append((rgb, depth))
    fit = estimate_registration(frames, K_DEPTH)
    assert edge_alignment(frames, K_DEPTH, fit) > 2 * edge_alignment(frames, K_DEPTH, ColorRegistration(K_DEPTH))
    # with every jump at one depth (1.2 m) a centre shift and an offset look alike: check their sum there
    kc, (tx, ty, _) = fit.intrinsics, fit.translation
    true_u = K_COLOR[0, 2] + K_COLOR[0, 0] * OFFSET[0] / 1.2
    true_v = K_COLOR[1, 2] + K_COLOR[1, 1] * OFFSET[1] / 1.2
    assert abs(kc[0, 0] - 525) < 8
    assert abs(kc[0, 2] + kc[0, 0] * tx / 1.2 - true_u) < 2 and abs(kc[1, 2] + kc[1, 1] * ty / 1.2 - true_v) < 2


def test_feature_seven_scenes_colour_is_registered_to_depth(sevenscenes_path):
    """On the real frames, colour edges lie on the depth jumps once registered, not as stored; the
    training frames fitted the constants, so the last frames check them."""
    raw = list(itertools.islice(SevenScenesSource(sevenscenes_path, register_color=False), 150, 200, 10))
    reg = list(itertools.islice(SevenScenesSource(sevenscenes_path), 150, 200, 10))
    assert all(f.extra.get("color_registered") for f in reg) and not any("color_registered" in f.extra for f in raw)
    assert all(np.array_equal(a.depth, b.depth) and np.array_equal(a.pose, b.pose) for a, b in zip(raw, reg))
    k = raw[0].intrinsics
    as_stored = edge_alignment([(f.image, f.depth) for f in raw], k, ColorRegistration(k))
    registered = edge_alignment([(f.image, f.depth) for f in reg], k, ColorRegistration(k))
    shipped = edge_alignment([(f.image, f.depth) for f in raw], k, KINECT_7SCENES)
    assert registered > 1.4 * as_stored and abs(registered - shipped) < 0.1 * shipped


def test_feature_a_seven_scenes_frame_given_alone_is_registered_like_the_sequence(sevenscenes_path):
    from sceneparse.sources import ImageFiles

    stem = "frame-000370"
    frame = next(itertools.islice(SevenScenesSource(sevenscenes_path), 185, None))
    alone = next(iter(ImageFiles(sevenscenes_path / f"{stem}.color.jpg", depth=sevenscenes_path)))
    assert frame.name == stem and alone.extra.get("color_registered")
    assert np.array_equal(alone.image, frame.image)
    # without a depth folder nothing can be registered: the image as stored
    plain = next(iter(ImageFiles(sevenscenes_path / f"{stem}.color.jpg")))
    assert "color_registered" not in plain.extra and not np.array_equal(plain.image, frame.image)


def _folder_of_7scenes_frames(root, src, stems):
    for stem in stems:
        for kind in ("color.jpg", "depth.png"):
            (root / f"{stem}.{kind}").symlink_to(src / f"{stem}.{kind}")
    (root / "intrinsics.txt").write_text("585 585 320 240\n")
    return root


def test_feature_a_frame_folder_with_its_colour_camera_is_registered(sevenscenes_path, tmp_path):
    """A folder of raw RGB-D frames with color-intrinsics.txt and depth-to-color.txt gives the frames
    the 7-Scenes source gives with the same registration; without them, the images as stored."""
    from sceneparse.sources import FolderSource

    stems = ["frame-000370", "frame-000372"]
    root = _folder_of_7scenes_frames(tmp_path, sevenscenes_path, stems)
    plain = list(FolderSource(root))
    assert not any("color_registered" in f.extra for f in plain)
    k = KINECT_7SCENES.intrinsics
    (root / "color-intrinsics.txt").write_text(f"{k[0, 0]} {k[1, 1]} {k[0, 2]} {k[1, 2]}\n")
    (root / "depth-to-color.txt").write_text(" ".join(str(t) for t in KINECT_7SCENES.translation))
    folder = list(FolderSource(root))
    seq = list(itertools.islice(SevenScenesSource(sevenscenes_path), 185, 187))
    assert [f.name for f in seq] == stems
    for f, s, p in zip(folder, seq, plain):
        assert f.extra.get("color_registered") and np.array_equal(f.depth, s.depth)
        assert np.array_equal(f.image, s.image) and not np.array_equal(p.image, f.image)
    unregistered = next(iter(FolderSource(root, registration=False)))
    assert np.array_equal(unregistered.image, plain[0].image)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"depth-to-color.txt": "0.02 0 0"}, "needs color-intrinsics.txt"),
        ({"color-intrinsics.txt": "525 525 320 240", "depth-to-color.txt": "25 0 0"}, "give metres"),
        ({"color-intrinsics.txt": "525 525 320 240", "depth-to-color.txt": "0.02 0"}, "expected tx ty tz"),
        ({"color-intrinsics.txt": "525 525 320"}, "expected fx fy cx cy"),
    ],
)
def test_exception_bad_colour_camera_files_of_a_folder(sevenscenes_path, tmp_path, files, message):
    from sceneparse.sources import FolderSource

    root = _folder_of_7scenes_frames(tmp_path, sevenscenes_path, ["frame-000000"])
    for name, text in files.items():
        (root / name).write_text(text)
    with pytest.raises(InputError, match=message):
        FolderSource(root)


def test_exception_registering_a_folder_without_depth(tmp_path):
    from sceneparse.sources import FolderSource

    cv2.imwrite(str(tmp_path / "000000.png"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "color-intrinsics.txt").write_text("525 525 32 24")
    with pytest.raises(InputError, match="needs depth images"):
        FolderSource(tmp_path)

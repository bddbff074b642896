"""Make the bundled 2D keypoint sample (examples/) from ground-truth mocap.

    .venv/bin/python tools/make_example_keypoints.py [--cache cache/mocap]

CMU subject 08, trial 04 ("slow walk", one of the validation subjects, so the bundled
model never trained on it), read through the mocap corpus (30 fps, the project's 21
joints, world metres, Z up), filmed by a fixed 1280x720 camera with a 60° horizontal
field of view from 5 m away at 1.4 m height, at an angle to the walking direction.
Detector-like noise is mild and fixed by a seed: each joint drifts by temporally
correlated noise of 0.5 % of the figure's height (AR(1), rho 0.6), and the scores follow
the error. Writes:

    examples/walk_keypoints.npz      the project's 2D .npz (DESIGN §5): keypoints (T, J, 2)
                                     pixels, scores (T, J), fps, image_size, joint_names
    examples/walk_ground_truth.npz   positions (T, J, 3) float32 world metres (Z up),
                                     camera_rotation (3, 3) world -> camera,
                                     camera_centre (3,) metres, focal_px, fps
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from diffpose_blender.backend.data.cameras import Cameras, look_at  # noqa: E402
from diffpose_blender.backend.data.corpus import load_corpus, shared_data_root  # noqa: E402
from diffpose_blender.core.formats import write_keypoints_npz  # noqa: E402
from diffpose_blender.core.keypoints import Keypoints2D  # noqa: E402

SOURCE, SUBJECT, TAKE = "cmu_bvh_cgspeed", "08", "04"
WIDTH, HEIGHT, FOV_DEG = 1280, 720, 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="cache/mocap")
    parser.add_argument("--out", default=str(REPO / "examples"))
    args = parser.parse_args()
    clips = load_corpus([SOURCE], args.cache, shared_root=shared_data_root())
    clip = next(c for c in clips if c.subject == SUBJECT and c.take == TAKE)
    world = clip.positions.astype(np.float64)                     # (T, J, 3) metres
    T = len(world)

    # The camera looks at the middle of the path from its side, 5 m away.
    pelvis = world[:, 0]
    middle = pelvis.mean(axis=0)
    heading = pelvis[-1, :2] - pelvis[0, :2]
    heading /= np.linalg.norm(heading) + 1e-9
    side = np.array([-heading[1], heading[0]])
    view = 0.8 * side + 0.6 * heading  # about 37° off the perpendicular
    centre = np.array([*(middle[:2] + 5.0 * view / np.linalg.norm(view)), 1.4])
    target = np.array([middle[0], middle[1], 0.9])
    rotation = look_at(centre[None], target[None], np.zeros(1))[0]
    focal = 0.5 * WIDTH / np.tan(np.radians(FOV_DEG) / 2)
    cams = Cameras(rotation[None], centre[None], np.array([focal]),
                   np.array([[WIDTH, HEIGHT]], dtype=np.float64))
    clean = cams.project(cams.to_camera(world[None]))[0]           # (T, J, 2) px

    rng = np.random.default_rng(8)
    figure = clean[..., 1].max(axis=1) - clean[..., 1].min(axis=1)  # (T,) px
    noise = np.empty((T,) + clean.shape[1:])
    noise[0] = rng.standard_normal(clean.shape[1:])
    for t in range(1, T):
        noise[t] = 0.6 * noise[t - 1] + 0.8 * rng.standard_normal(clean.shape[1:])
    noisy = clean + 0.005 * figure[:, None, None] * noise
    rel = np.linalg.norm(noisy - clean, axis=-1) / figure[:, None]
    scores = np.clip(np.exp(-0.5 * (rel / 0.04) ** 2) * rng.uniform(0.8, 0.97, rel.shape),
                     0.0, 1.0)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kp = Keypoints2D(keypoints=noisy, scores=scores, valid=np.ones(T, bool),
                     fps=float(clip.fps), image_size=(WIDTH, HEIGHT),
                     source=f"mocap:cmu {SUBJECT}_{TAKE}")
    write_keypoints_npz(out / "walk_keypoints.npz", kp)
    np.savez_compressed(out / "walk_ground_truth.npz", positions=world.astype(np.float32),
                        camera_rotation=rotation, camera_centre=centre,
                        focal_px=np.array(focal), fps=np.array(clip.fps))
    print(f"wrote {out}: {T} frames at {clip.fps} fps from {clip.path}")


if __name__ == "__main__":
    main()

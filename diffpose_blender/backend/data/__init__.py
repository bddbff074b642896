"""Mocap training data: readers, joint maps, the common world frame, corpus and split.

The shared corpus (``shared/data/mocap``, described in its README and manifest.csv) holds
CMU BVH in four skeleton variants, CMU exp-map text, HDM05 ASF/AMC and Human3.6M exp-map
text. This package reads all of them into one kind of `Clip`: the project's 21 joints
(`core.skeleton`), world metres, Z up, floor at z = 0, at `TRAIN_FPS`.

Modules, one concept each:

- `textfile`   reading a (gzip) text file whole
- `kinematics` `NativeMotion` (a clip on its own skeleton), rotations, FK, resampling
- `bvh`, `asfamc`, `expmap`  the readers, each to a `NativeMotion`
- `joint_maps` native skeleton -> the 21 joints (with the skeleton repairs), per source
- `world`      native axes -> the common world frame; floor and levelling
- `cleaning`   cutting reference frames, pops and impossible heads out of clips
- `corpus`     sources, `load_file`, the cached `load_corpus`, the subject split

Typical use (training)::

    from diffpose_blender.backend.data import (LICENCE_CLEAN_SOURCES, load_corpus,
                                               shared_data_root, split_by_subjects,
                                               DEFAULT_VAL_SUBJECTS)
    clips = load_corpus(LICENCE_CLEAN_SOURCES, Path("cache/mocap"),
                        shared_root=shared_data_root())
    train, val = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
"""

from .corpus import (CODE_VERSION, DEFAULT_VAL_SUBJECTS, LICENCE_CLEAN_SOURCES, SOURCES,
                     TRAIN_FPS, Clip, load_clip, load_corpus, load_file, load_source,
                     shared_data_root, split_by_subject, split_by_subjects, subject_key)

__all__ = [
    "CODE_VERSION", "DEFAULT_VAL_SUBJECTS", "LICENCE_CLEAN_SOURCES", "SOURCES", "TRAIN_FPS",
    "Clip", "load_clip", "load_corpus", "load_file", "load_source", "shared_data_root",
    "split_by_subject", "split_by_subjects", "subject_key",
]

"""Per-frame cues computed from the videos themselves, once per clip and cached: pose keypoints (PoseMask-I3D)
and region proposals (k-Region-I3D), the inputs of the two remaining baselines of ActX Table 1 (000 section 4.1.3).

- :mod:`.cache`      where a clip's cues live and the load-or-compute rule (complete files only, resumable)
- :mod:`.pose`       keypoint sources behind one interface: estimated (mediapipe), oracle (the benchmark's
                     ground truth), files (J-HMDB ``joint_positions.mat``, COCO keypoint JSON)
- :mod:`.proposals`  OpenCV selective search (Fast mode) in rank order: our stand-in for the paper's RPN

Every array uses the course's convention for per-step inputs (actx.experiments.inputs): x, y as fractions of
the frame's width and height, so that they map onto a feature grid of any size.
"""

from .cache import CACHE_PREFIX, cue_path, load_or_compute
from .pose import (COCO_KEYPOINTS, MEDIAPIPE_KEYPOINTS, CocoKeypoints, JHMDBKeypoints, KeypointSource,
                   MediapipePose, OracleKeypoints, ensure_pose, key_frames, pose_cost, pose_on_actor, pose_steps,
                   step_keypoints)
from .proposals import (MAX_PROPOSALS, clip_proposals, ensure_proposals, proposal_frame, proposal_steps,
                        selective_search)

__all__ = ["CACHE_PREFIX", "COCO_KEYPOINTS", "CocoKeypoints", "JHMDBKeypoints", "KeypointSource",
           "MAX_PROPOSALS", "MEDIAPIPE_KEYPOINTS", "MediapipePose", "OracleKeypoints", "clip_proposals",
           "cue_path", "ensure_pose", "ensure_proposals", "key_frames", "load_or_compute", "pose_cost",
           "pose_on_actor", "pose_steps", "proposal_frame", "proposal_steps", "selective_search", "step_keypoints"]

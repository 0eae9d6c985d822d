"""HAMBox (CVPR 2020) and its anchor-matching baselines; specification: shared/specs/detectors.md.

Modules: backbone (ResNet-50, torchvision layout, FrozenBN), neck (LFPN), heads (plain/DH, SSH,
PA, ZCC shifted predictors), anchors, box_coding, matching (SMS, DMS, NAMS, ZCC, OAM), losses
(focal, RAL, smooth-L1), model (HAMBoxConfig, HAMBox), inference (NMS, post-processing,
multi-scale test), stats (spec §8), checkpoint (file format), detector (HAMBoxDetector).
Importing this package imports nothing heavy; import the submodules you need.
"""

"""Deep-learning risk scores of the nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685).

``crops``: tumour-centred, HU-clipped, z-scored crops; ``augmentation``: multi-view
augmentation on the device; ``network``: the dense-like 3D CNN with the survival (risk
vector) and dual-task (PR, PD) heads; ``intervals`` and ``survival_loss``: the risk
vector's time intervals, labels and the margin loss of equations [1]/[2]; ``training``:
fitting with model choice on the validation partition; ``scoring``: scores and
macro-accuracy; ``weights``: npz weights (no pickle); ``gradcam`` and ``similarity``: 3D
Grad-CAM, SSIM and Spearman; ``stage``: the run's deep stage; ``frozen``: scoring with a
frozen CNN bundle.
"""

"""Deep-learning risk scores of seed 000 (Transl Lung Cancer Res 2022;11(4):670-685).

``intervals``: the 3 survival time intervals (tertile cut-offs of training event times)
and each patient's interval labels; ``survival_loss``: the multi-label margin loss of the
seed's equations [1] and [2] that trains the survival network's risk vector.
"""

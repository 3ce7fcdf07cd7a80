"""Survival statistics of a study, computed in R (``rscripts/*.R``) through
:mod:`studyrunner.rbridge`.

Modules:
    survival_model  univariate Cox screening, multivariable Cox fit, linear predictor of a
                    frozen model, evaluation of a risk score (C-index, hazard ratio,
                    log-rank test, Kaplan-Meier curves, numbers at risk).
    table_one       baseline characteristics by group with between-group tests.
"""

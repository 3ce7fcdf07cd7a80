"""Survival statistics of a study, computed in R (``rscripts/*.R``) through
:mod:`studyrunner.rbridge`.

The stage (``stage.run_statistics``) runs Table 1, the radiomics model
(``radiomics_model``: development, cross-validation, evaluation) and the CNN scores
(``cnn_scores``). Shared by both: ``cohorts`` (training and test), ``cutoffs`` (one cut-off
rule and record) and ``stratification`` (one score in one cohort, and the oracle).

Each remaining module is the typed Python entry point to the R file of the same name:
``cox``, ``evaluation``, ``timeroc``, ``calibration``, ``decision_curve``, ``cutpoint``
(maxstat and X-tile), ``concordance``, ``cox_table``, ``nomogram``, ``risk_scores``, ``roc``,
``icc``, ``learners``, ``stepwise_cox``, ``table_one``; ``r_inputs`` prepares their data.
"""

"""The radiomics model of a study (a Cox model, or the escc_ici_chemo signature with its
reproducibility filter, learners, stepwise Cox and cross-validation).
``stage.develop_and_evaluate`` is the entry point."""

"""The papers the report's methods text cites (templates hold no digits, so the years live
here). Learners and maxstat p-value methods carry their citations in ``studyrunner.registry``."""

from __future__ import annotations

METHOD_REFERENCES = {
    "icc": "Shrout & Fleiss, Psychol Bull 1979; McGraw & Wong, Psychol Methods 1996",
    "stepwise": "Venables & Ripley, Modern Applied Statistics with S, 2002: MASS::stepAIC",
    "maxstat": "Lausen & Schumacher, Biometrics 1992; R package maxstat",
    "time_roc": "Blanche, Dartigues & Jacqmin-Gadda, Stat Med 2013",
    "decision_curves": "Vickers & Elkin, Med Decis Making 2006; censored outcomes as in Vickers et al., "
                       "BMC Med Inform Decis Mak 2008",
    "densenet": "Huang et al., CVPR 2017",
    "gradcam": "Selvaraju et al., ICCV 2017",
    "ssim": "Wang et al., IEEE Trans Image Process 2004",
    "delong": "DeLong, DeLong & Clarke-Pearson, Biometrics 1988",
    "youden": "Youden, Cancer 1950",
    "xtile": "Camp, Dolled-Filhart & Rimm, Clin Cancer Res 2004",
    "nomogram": "Harrell, Regression Modeling Strategies, 2015: rms::nomogram",
    "ici": "Austin, Harrell & van Klaveren, Stat Med 2020",
    "bootstrap": "Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 13",
    "seed000": "Transl Lung Cancer Res 2022;11(4):670-685",
    "reverse_km": "Schemper & Smith, Control Clin Trials 1996",
    "smd": "Austin, Stat Med 2009",
    "breslow": "Breslow, J R Stat Soc B 1972",
    "harrell": "Harrell, Lee & Mark, Stat Med 1996",
    "missing_indicator": "Groenwold et al., CMAJ 2012",
}

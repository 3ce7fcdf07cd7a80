"""Statistics of the CNN risk vectors and response scores (the nsclc_ici study; Transl Lung
Cancer Res 2022;11(4):670-685). ``stage.evaluate_cnn_scores`` is the entry point."""

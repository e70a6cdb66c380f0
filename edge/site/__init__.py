"""Site calibration: how the model does at this clinic, and the threshold the clinic chooses.

Numpy only, so the station's page and API and `cxr-edge calibrate` share one implementation:

    stats.py        Wilson intervals, confusion matrix and Cohen's kappa, ROC and AUC (bootstrap)
    screening.py    the screening score, the threshold table, the operating-point search and the
                    minimum number of confirmed cases
    calibration.py  the site calibration record (site.json), fitted on confirmed cases, bound to
                    one model's sha256, and the screen decision it adds to each result
    performance.py  the Site page's numbers: per class, agreement, weekly rates, the table, ROC
"""

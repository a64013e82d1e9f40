"""Build-failure prediction: features known before tests run, training, evaluation and the CI gate.

The gate path (`gate`, `treemodel`, `features`, `artifact`, `gitmeta`) imports only the standard library,
so `cipulse predict` answers faster than importing scikit-learn; training and evaluation import the
heavy libraries lazily.
"""

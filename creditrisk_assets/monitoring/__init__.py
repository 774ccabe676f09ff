"""Monitoring: feature and prediction drift (Evidently, PSI), performance once labels mature, alerts."""

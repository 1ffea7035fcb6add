"""patchwork_widget: interactive machine learning for image labeling in Jupyter."""

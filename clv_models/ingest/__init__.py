"""Raw data in: the synthetic shop, importers of public and custom formats, and CSV checks that
name the file, line and column of a defect."""

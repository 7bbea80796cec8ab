"""Files and user input at the edge of the system: image reading (images), validation of what a
user passes to the API (input_checks), labelled grids and plots (visualize)."""

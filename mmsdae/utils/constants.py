"""Constants shared by several layers (datasets, start-up checks, analysis
tools); this module imports nothing."""

#: image file extensions the folder mode of the procedural dataset, the
#: start-up checks and the analysis tools accept (lower case)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                    '.tiff', '.webp')

# The Django app for generator models and render jobs. Kept import-light: the
# engine (generation.stylegan, PyTorch) is imported only where a forward pass
# runs (generation.rendering), never when Django loads its apps.

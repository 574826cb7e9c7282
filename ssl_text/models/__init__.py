"""Models: resolving model names (`resolve`) and the heads that sit on an encoder (`projection`)."""

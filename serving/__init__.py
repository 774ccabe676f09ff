"""Ray Serve application for the champion PD model (see the serving issue; not built yet)."""

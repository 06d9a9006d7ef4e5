//! Patches: JSON merge, JSON patch and strategic merge.

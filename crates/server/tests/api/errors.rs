//! Bodies, content types, limits and unknown routes.

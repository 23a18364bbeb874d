//! Fernsicht networking.

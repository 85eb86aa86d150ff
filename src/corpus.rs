//! Labelled speech corpora as data sources (being written).

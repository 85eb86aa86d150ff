//! serd's integration tests, one binary: feature parity with openSMILE-python, the streaming
//! extractor, decoding, and the `serd` command line.

mod common;

mod cli;
mod decode;
mod parity;
mod train;

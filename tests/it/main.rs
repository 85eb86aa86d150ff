//! serd's integration tests, one binary: feature parity with openSMILE-python, the streaming
//! extractor, decoding, the `serd` command line, training, `serd listen` and its `--serve`,
//! and the output schema every line on stdout is checked against.

mod common;

mod cli;
mod decode;
mod hostile;
mod listen;
mod parity;
mod robust;
mod schema;
mod serve;
mod train;

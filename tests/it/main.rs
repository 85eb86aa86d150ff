//! serd's integration tests, one binary: feature parity with openSMILE-python, the streaming
//! extractor, decoding, the `serd` command line, training, `serd listen` and its `--serve`.

mod common;

mod cli;
mod decode;
mod hostile;
mod listen;
mod parity;
mod robust;
mod serve;
mod train;

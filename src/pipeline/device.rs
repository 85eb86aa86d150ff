//! What every capture device does, whatever the audio comes from: the contract between the
//! supervisor and a source (the shape of CamillaDSP's capture devices, without its trait: serd's
//! two sources are chosen from one enum, [`super::source::AudioInput`], each opening with its own
//! error type, which a trait object would have to erase).
//!
//! A device is opened before the chain starts, so that its rate is known for the `start` event
//! and a missing device or unreadable file is an error at once. It then runs on its own thread,
//! writing blocks into the input link ([`super::input::Writer`]): it waits for [`Control::Start`] (sent once
//! every stage is ready), ends the stream on [`Control::Stop`] or when its audio ends, always
//! with `Writer::end`, and reports [`super::Status::Done`] or [`super::Status::Failed`] for
//! [`super::Stage::Source`]. The microphone ([`super::mic::Microphone`]) and the file replay
//! ([`super::replay::Replay`]) are the two devices.

use std::thread::JoinHandle;

use crossbeam_channel::Sender;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
}

/// A running source.
pub struct DeviceHandle {
    /// `mic:NAME` or `file:PATH`.
    pub name: String,
    /// Sample rate of the device or file.
    pub rate: u32,
    /// Whether the source delivers in real time (and so drops rather than waits).
    pub live: bool,
    control: Sender<Control>,
    thread: JoinHandle<()>,
}

impl DeviceHandle {
    pub(super) fn new(
        name: String,
        rate: u32,
        live: bool,
        control: Sender<Control>,
        thread: JoinHandle<()>,
    ) -> DeviceHandle {
        DeviceHandle {
            name,
            rate,
            live,
            control,
            thread,
        }
    }

    pub fn start(&self) {
        let _ = self.control.try_send(Control::Start);
    }

    /// Asks the source to end the stream (it sends the end of stream down the chain).
    pub fn stop(&self) {
        let _ = self.control.try_send(Control::Stop);
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

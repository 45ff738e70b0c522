//! Any bytes as an incoming websocket message: the text frame, then binary
//! attachments after each 0xFF byte. Decoding must end in a verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|byte| *byte == 0xFF);
    let frame = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let attachments: Vec<&[u8]> = parts.collect();
    let _ = chatwire::chat::probe::decode(&frame, &attachments);
});

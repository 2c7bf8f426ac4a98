//! A JSON request body (its first byte chooses the route) through the
//! routes' extractor and parsers: a value or a 4xx, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    palisade_api::fuzzing::json_body(data);
});

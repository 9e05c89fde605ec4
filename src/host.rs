//! Every proxy-wasm host call meshguard makes, each returning `Result` instead of panicking on
//! an unexpected status (the SDK's `get_map_bytes`, `set_property`, `send_http_response`,
//! `define_metric`, `increment_metric`, `dispatch_http_call`, `get_buffer`, `get_log_level`,
//! `set_tick_period` and its logger panic, and a panic in Envoy is a 503 storm or, under
//! FAIL_OPEN, a bypass). Also the `log` logger and the panic hook, which log through
//! `proxy_log` at critical before the VM traps. All data is handled as bytes; nothing assumes
//! UTF-8. `tests/architecture.rs` checks that no other module calls the host.

use std::ptr::{null, null_mut};

use meshguard_core::request::header_pairs as pairs;

/// A host status other than `Ok` (proxy-wasm ABI 0.2.1 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;
pub const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_RESPONSE_HEADERS: u32 = 2;
pub const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
pub const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const METRIC_COUNTER: u32 = 0;
const METRIC_HISTOGRAM: u32 = 2;
/// proxy-wasm log levels: trace 0 ... critical 5.
const LOG_CRITICAL: u32 = 5;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

/// Takes ownership of a host-allocated buffer (allocated through the SDK's exported
/// `proxy_on_memory_allocate`, i.e. a `Vec<u8>` of exactly `size` capacity).
///
/// # Safety
/// `data` must be null or a buffer the host returned for this call with length `size`.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the ABI contract above.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// A header map as the host serializes it (the pairs encoding of [`pairs::decode`]), to be
/// decoded in place: one buffer per map, no copy per header.
pub fn header_map_bytes(map_type: u32) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers are valid; the host fills them per the ABI.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    if status != OK {
        return Err(HostError(status));
    }
    // SAFETY: the host returned this buffer for this call.
    Ok(unsafe { take(data, size) }.unwrap_or_default())
}

/// Every header of a map, one entry per value (repeated headers stay separate), names as sent
/// by Envoy (lower-case). Names that are not UTF-8 cannot occur (Envoy validates header names);
/// they would be dropped rather than crash.
pub fn header_map(map_type: u32) -> Result<Vec<(String, Vec<u8>)>, HostError> {
    let bytes = header_map_bytes(map_type)?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let pairs = pairs::decode(&bytes).ok_or(HostError(u32::MAX))?;
    Ok(pairs
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k.to_vec()).ok()?, v.to_vec())))
        .collect())
}

fn encode_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// A property's raw bytes; `Ok(None)` when Envoy says it does not exist.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let encoded = encode_path(path);
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the path buffer outlives the call; out-pointers are valid.
    let status =
        unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    match status {
        // SAFETY: the host returned this buffer for this call.
        OK => Ok(unsafe { take(data, size) }),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Removes a request header (every value of it).
pub fn remove_request_header(name: &str) -> Result<(), HostError> {
    // SAFETY: the buffer outlives the call.
    let status =
        unsafe { proxy_remove_header_map_value(MAP_REQUEST_HEADERS, name.as_ptr(), name.len()) };
    status_result(status)
}

/// Adds one more value of a request header (Envoy `addCopy`).
pub fn add_request_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both buffers outlive the call.
    let status = unsafe {
        proxy_add_header_map_value(
            MAP_REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status_result(status)
}

/// Sets a request header, replacing any value it had.
pub fn set_request_header(name: &str, value: &str) -> Result<(), HostError> {
    replace_header(MAP_REQUEST_HEADERS, name, value)
}

/// A host buffer (e.g. an HTTP call response body); `Ok(None)` when empty or absent.
pub fn buffer(buffer_type: u32, size: usize) -> Result<Option<Vec<u8>>, HostError> {
    buffer_slice(buffer_type, 0, size)
}

/// Up to `max` bytes of a host buffer from byte `start`; `Ok(None)` when there are none.
/// proxy-wasm-cpp-host's `get_buffer_bytes` returns fewer bytes at the end of the buffer, and
/// an empty result (OK, a null pointer) from its end on.
fn buffer_slice(buffer_type: u32, start: usize, max: usize) -> Result<Option<Vec<u8>>, HostError> {
    let mut data = null_mut();
    let mut returned = 0;
    // SAFETY: out-pointers are valid; the host fills them per the ABI.
    let status =
        unsafe { proxy_get_buffer_bytes(buffer_type, start, max, &mut data, &mut returned) };
    match status {
        // SAFETY: the host returned this buffer for this call.
        OK => Ok(unsafe { take(data, returned) }),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Seconds since the Unix epoch, from Envoy's clock.
pub fn now_seconds() -> Result<u64, HostError> {
    Ok(now_nanos()? / 1_000_000_000)
}

/// Nanoseconds since the Unix epoch, from Envoy's clock.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut nanos = 0u64;
    // SAFETY: the out-pointer is valid.
    status_result(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Sets a one-segment property: filter state `wasm.<name>`, readable by access logs.
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: both buffers outlive the call.
    let status =
        unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    status_result(status)
}

/// Replaces (or adds) one response header.
pub fn set_response_header(name: &str, value: &str) -> Result<(), HostError> {
    replace_header(MAP_RESPONSE_HEADERS, name, value)
}

fn replace_header(map_type: u32, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both buffers outlive the call.
    let status = unsafe {
        proxy_replace_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status_result(status)
}

/// `Ok` for the host's OK status, the status as an error otherwise.
fn status_result(status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Sends a local reply. Envoy turns it into a trailers-only gRPC response (403 ->
/// `grpc-status: 7`, body -> `grpc-message`) when the request is gRPC.
pub fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let encoded = pairs::encode(headers);
    // SAFETY: all buffers outlive the call.
    let rc = unsafe {
        proxy_send_local_response(
            status,
            if details.is_empty() {
                null()
            } else {
                details.as_ptr()
            },
            details.len(),
            body.as_ptr(),
            body.len(),
            encoded.as_ptr(),
            encoded.len(),
            -1,
        )
    };
    status_result(rc)
}

fn define_metric(metric_type: u32, name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    // SAFETY: the name outlives the call; the out-pointer is valid.
    status_result(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Defines a counter metric; its id for [`increment_counter`].
pub fn define_counter(name: &str) -> Result<u32, HostError> {
    define_metric(METRIC_COUNTER, name)
}

/// Defines a histogram metric; its id for [`record_histogram`].
pub fn define_histogram(name: &str) -> Result<u32, HostError> {
    define_metric(METRIC_HISTOGRAM, name)
}

/// Records one value in a histogram.
pub fn record_histogram(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status_result(unsafe { proxy_record_metric(id, value) })
}

/// Adds `n` to a counter.
pub fn increment_counter(id: u32, n: u64) -> Result<(), HostError> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    // SAFETY: no pointers.
    status_result(unsafe { proxy_increment_metric(id, n) })
}

/// Up to `max` bytes of the plugin configuration from byte `start` (readable during
/// `on_configure`, whose argument is its size): the loader reads it a chunk at a time instead
/// of copying the whole text into the VM. Empty from the end of the configuration on.
pub fn plugin_configuration_bytes(start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    Ok(buffer_slice(BUFFER_PLUGIN_CONFIGURATION, start, max)?.unwrap_or_default())
}

/// Shared data (one store per VM id, seen by every thread's VM): `true` when this VM is the
/// first to store `value` under `key`, `false` when the value is already there (another VM of
/// the same plugin stored it, or won the compare-and-swap).
pub fn first_to_store(key: &str, value: &[u8]) -> Result<bool, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    let mut cas = 0;
    // SAFETY: the key outlives the call; out-pointers are valid.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    // SAFETY: the host returned this buffer for this call.
    let current = unsafe { take(data, size) };
    match status {
        OK if current.as_deref() == Some(value) => return Ok(false),
        OK | NOT_FOUND => {}
        other => return Err(HostError(other)),
    }
    // SAFETY: key and value outlive the call.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        OK => Ok(true),
        CAS_MISMATCH => Ok(false),
        other => Err(HostError(other)),
    }
}

/// Asks Envoy to call `on_tick` every `period_ms` milliseconds.
pub fn set_tick_period(period_ms: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status_result(unsafe { proxy_set_tick_period_milliseconds(period_ms) })
}

/// Starts an HTTP call through `cluster`; the token `on_http_call_response` reports.
///
/// Goes through the SDK, whose dispatcher must record the token to route the response (a
/// token it does not know makes it panic). Its own panic is for a status other than `Ok`,
/// `BadArgument` and `InternalFailure`, the only ones Envoy's `proxy_http_call` returns.
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    timeout_ms: u32,
) -> Result<u32, HostError> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        None,
        Vec::new(),
        std::time::Duration::from_millis(u64::from(timeout_ms)),
    )
    .map_err(|status| HostError(status as u32))
}

/// Writes one line to Envoy's log at a proxy-wasm level (0 trace ... 5 critical).
fn log_line(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY: the message outlives the call.
    status_result(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
}

/// The `log` crate's logger: lines go to Envoy's log; a failed write is dropped.
struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        let _ = log_line(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs the logger (at `warn` until the configuration is read) and a panic hook that logs
/// the panic at critical before the VM traps.
pub fn install_logger_and_panic_hook() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    std::panic::set_hook(Box::new(|info| {
        let _ = log_line(LOG_CRITICAL, &format!("meshguard panicked: {info}"));
    }));
}

/// Matches the `log` crate's level to Envoy's (so disabled lines cost no host call).
pub fn follow_host_log_level() -> Result<(), HostError> {
    let mut level = 0;
    // SAFETY: the out-pointer is valid.
    status_result(unsafe { proxy_get_log_level(&mut level) })?;
    log::set_max_level(match level {
        0 => log::LevelFilter::Trace,
        1 => log::LevelFilter::Debug,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Warn,
        4 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    });
    Ok(())
}

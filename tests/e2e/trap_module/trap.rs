//! A test-only proxy-wasm module (not meshguard): built at test time by
//! tests/e2e/test_failure_policy.py with `rustc --target wasm32-wasip1 --crate-type cdylib`, to
//! show what Envoy's `failure_policy` does when a VM traps while handling a request.
//!
//! on_request_headers: path `/trap...` -> executes `unreachable` (a Wasm trap, the VM is dead);
//! `/denied...` -> local reply 403 "denied by trap module"; anything else -> continue.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

extern "C" {
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> u32;
}

const HEAP_SIZE: usize = 64 * 1024;
static mut HEAP: [u8; HEAP_SIZE] = [0; HEAP_SIZE];
static mut NEXT: usize = 0;

/// A bump allocator for the host's copies (reset on every request; one request at a time per VM).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    unsafe {
        let start = (NEXT + 7) & !7;
        if start + size > HEAP_SIZE {
            core::arch::wasm32::unreachable()
        }
        NEXT = start + size;
        core::ptr::addr_of_mut!(HEAP).cast::<u8>().add(start)
    }
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _configuration_size: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root_context_id: u32, _configuration_size: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    _headers: u32,
    _end_of_stream: u32,
) -> u32 {
    unsafe {
        NEXT = 0;
        let key = b":path";
        let mut ptr: *mut u8 = core::ptr::null_mut();
        let mut len: usize = 0;
        if proxy_get_header_map_value(0, key.as_ptr(), key.len(), &mut ptr, &mut len) != 0
            || ptr.is_null()
        {
            return 0;
        }
        let path = core::slice::from_raw_parts(ptr, len);
        if path.starts_with(b"/trap") {
            core::arch::wasm32::unreachable()
        }
        if path.starts_with(b"/denied") {
            let details = b"trap_module_denied";
            let body = b"denied by trap module\n";
            proxy_send_local_response(
                403,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                core::ptr::null(),
                0,
                -1,
            );
            return 1; // StopIteration
        }
        0 // Continue
    }
}

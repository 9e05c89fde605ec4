//! The proxy-wasm SDK's context helpers, overridden with inert bodies so that their default
//! bodies are not compiled into the module.
//!
//! The SDK's traits (`Context`, `RootContext`, `HttpContext`) give every helper that wraps a
//! host call (`get_http_request_header`, `set_property`, `dispatch_http_call`, ...) a default
//! body that makes the call and unwraps its status. The SDK's dispatcher keeps each context as
//! a `Box<dyn ...>`, so every method of the trait sits in the context type's vtable and is
//! compiled in, once per context type, with the SDK's host-call wrapper and a panic path
//! (message and source location) each: about 100 helpers that meshguard never calls. meshguard
//! makes every host call through `src/host.rs`, where each returns `Result`, and
//! `tests/architecture.rs` refuses a call to any of these helpers elsewhere in the glue.
//!
//! The macros below, expanded in the glue's trait impls (where `Bytes`, `Status`,
//! `GrpcStatusCode`, `Duration` and `SystemTime` are in scope), replace each helper by a body
//! that asks the host nothing: a getter answers absent or empty (gRPC status 2, UNKNOWN), a
//! setter does nothing, a call that returns a status answers `Status::InternalFailure`, the
//! clock answers the epoch. The callbacks (`on_*`, `create_http_context`, `get_type`), which
//! the dispatcher calls, are not touched.
//!
//! Upstream: proxy-wasm-rust-sdk 0.2.5, `src/traits.rs` (the signatures are the traits'; a
//! helper added by a later SDK version keeps its default body until it is added here).

/// The inert helpers of `Context`, for each context type (the root and the HTTP context).
macro_rules! inert_context_helpers {
    () => {
        fn get_current_time(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH
        }
        fn get_property(&self, _path: Vec<&str>) -> Option<Bytes> {
            None
        }
        fn set_property(&self, _path: Vec<&str>, _value: Option<&[u8]>) {}
        fn get_shared_data(&self, _key: &str) -> (Option<Bytes>, Option<u32>) {
            (None, None)
        }
        fn set_shared_data(
            &self,
            _key: &str,
            _value: Option<&[u8]>,
            _cas: Option<u32>,
        ) -> Result<(), Status> {
            Err(Status::InternalFailure)
        }
        fn remove_shared_data(&self, _key: &str, _cas: Option<u32>) -> Result<(), Status> {
            Err(Status::InternalFailure)
        }
        fn register_shared_queue(&self, _name: &str) -> u32 {
            0
        }
        fn resolve_shared_queue(&self, _vm_id: &str, _name: &str) -> Option<u32> {
            None
        }
        fn dequeue_shared_queue(&self, _queue_id: u32) -> Result<Option<Bytes>, Status> {
            Err(Status::InternalFailure)
        }
        fn enqueue_shared_queue(
            &self,
            _queue_id: u32,
            _value: Option<&[u8]>,
        ) -> Result<(), Status> {
            Err(Status::InternalFailure)
        }
        fn dispatch_http_call(
            &self,
            _upstream: &str,
            _headers: Vec<(&str, &str)>,
            _body: Option<&[u8]>,
            _trailers: Vec<(&str, &str)>,
            _timeout: Duration,
        ) -> Result<u32, Status> {
            Err(Status::InternalFailure)
        }
        fn get_http_call_response_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_call_response_headers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn get_http_call_response_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_call_response_header_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn get_http_call_response_body(&self, _start: usize, _max_size: usize) -> Option<Bytes> {
            None
        }
        fn get_http_call_response_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_call_response_trailers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn get_http_call_response_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_call_response_trailer_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn dispatch_grpc_call(
            &self,
            _upstream_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
            _message: Option<&[u8]>,
            _timeout: Duration,
        ) -> Result<u32, Status> {
            Err(Status::InternalFailure)
        }
        fn get_grpc_call_response_body(&self, _start: usize, _max_size: usize) -> Option<Bytes> {
            None
        }
        fn cancel_grpc_call(&self, _token_id: u32) {}
        fn open_grpc_stream(
            &self,
            _cluster_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
        ) -> Result<u32, Status> {
            Err(Status::InternalFailure)
        }
        fn get_grpc_stream_initial_metadata(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn get_grpc_stream_initial_metadata_value(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn send_grpc_stream_message(
            &self,
            _token_id: u32,
            _message: Option<&[u8]>,
            _end_stream: bool,
        ) {
        }
        fn get_grpc_stream_message(&mut self, _start: usize, _max_size: usize) -> Option<Bytes> {
            None
        }
        fn get_grpc_stream_trailing_metadata(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn get_grpc_stream_trailing_metadata_value(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn cancel_grpc_stream(&self, _token_id: u32) {}
        fn close_grpc_stream(&self, _token_id: u32) {}
        fn get_grpc_status(&self) -> (u32, Option<String>) {
            (2, None)
        }
        fn call_foreign_function(
            &self,
            _function_name: &str,
            _arguments: Option<&[u8]>,
        ) -> Result<Option<Bytes>, Status> {
            Err(Status::InternalFailure)
        }
        fn done(&self) {}
    };
}
pub(crate) use inert_context_helpers;

/// The inert helpers of `RootContext`.
macro_rules! inert_root_helpers {
    () => {
        fn get_vm_configuration(&self) -> Option<Bytes> {
            None
        }
        fn get_plugin_configuration(&self) -> Option<Bytes> {
            None
        }
        fn set_tick_period(&self, _period: Duration) {}
    };
}
pub(crate) use inert_root_helpers;

/// The inert helpers of `HttpContext`.
macro_rules! inert_http_helpers {
    () => {
        fn get_http_request_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_request_headers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn set_http_request_headers(&self, _headers: Vec<(&str, &str)>) {}
        fn set_http_request_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {}
        fn get_http_request_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_request_header_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn set_http_request_header(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_request_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_request_header(&self, _name: &str, _value: &str) {}
        fn add_http_request_header_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_request_header(&self, _name: &str) {}
        fn get_http_request_body(&self, _start: usize, _max_size: usize) -> Option<Bytes> {
            None
        }
        fn set_http_request_body(&self, _start: usize, _size: usize, _value: &[u8]) {}
        fn get_http_request_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_request_trailers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn set_http_request_trailers(&self, _trailers: Vec<(&str, &str)>) {}
        fn set_http_request_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {}
        fn get_http_request_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_request_trailer_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn set_http_request_trailer(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_request_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_request_trailer(&self, _name: &str, _value: &str) {}
        fn add_http_request_trailer_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_request_trailer(&self, _name: &str) {}
        fn resume_http_request(&self) {}
        fn reset_http_request(&self) {}
        fn get_http_response_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_response_headers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn set_http_response_headers(&self, _headers: Vec<(&str, &str)>) {}
        fn set_http_response_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {}
        fn get_http_response_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_response_header_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn set_http_response_header(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_response_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_response_header(&self, _name: &str, _value: &str) {}
        fn add_http_response_header_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_response_header(&self, _name: &str) {}
        fn get_http_response_body(&self, _start: usize, _max_size: usize) -> Option<Bytes> {
            None
        }
        fn set_http_response_body(&self, _start: usize, _size: usize, _value: &[u8]) {}
        fn get_http_response_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_response_trailers_bytes(&self) -> Vec<(String, Bytes)> {
            Vec::new()
        }
        fn set_http_response_trailers(&self, _trailers: Vec<(&str, &str)>) {}
        fn set_http_response_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {}
        fn get_http_response_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_response_trailer_bytes(&self, _name: &str) -> Option<Bytes> {
            None
        }
        fn set_http_response_trailer(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_response_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_response_trailer(&self, _name: &str, _value: &str) {}
        fn add_http_response_trailer_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_response_trailer(&self, _name: &str) {}
        fn resume_http_response(&self) {}
        fn reset_http_response(&self) {}
        fn send_http_response(
            &self,
            _status_code: u32,
            _headers: Vec<(&str, &str)>,
            _body: Option<&[u8]>,
        ) {
        }
        fn send_grpc_response(
            &self,
            _grpc_status: GrpcStatusCode,
            _grpc_status_message: Option<&str>,
            _custom_metadata: Vec<(&str, &[u8])>,
        ) {
        }
    };
}
pub(crate) use inert_http_helpers;

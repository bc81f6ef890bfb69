//! N-API binding over `ebpf-vm`. No logic of its own: it converts arguments, calls the engine and
//! returns outcomes as plain data, or throws errors whose `code` is a property (see `errors`), for
//! the TypeScript layer to turn into typed JavaScript errors. Nothing here may panic across the
//! boundary: the engine reports errors as values, and every conversion is checked.

pub mod batch;
pub mod coverage;
pub mod errors;
pub mod file_io;
pub mod js_helpers;
pub mod map;
pub mod names;
pub mod pcap_records;
pub mod program;
pub mod prototypes;
pub mod trace;

pub use map::NativeMap;
pub use program::NativeProgram;

pub(crate) use errors::invalid;
pub use errors::{Code, NativeError, Thrown};

// proxy-wasm shared data as the core's `SharedStore`: one map shared by every VM with the same
// `vm_id`, so by every Envoy worker thread.

use super::abi;
use crate::replay::{SharedStore, StoreError};

pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        abi::get_shared_data(key).map_err(|_| StoreError::Other)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        abi::set_shared_data(key, value, cas).map_err(|s| match s {
            abi::CAS_MISMATCH => StoreError::CasMismatch,
            _ => StoreError::Other,
        })
    }
}

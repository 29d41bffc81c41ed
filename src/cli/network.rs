//! `containr network ...`.

use containr::network;

use super::require_root;
use crate::error::Error;

/// `containr network prune`: what was removed, one line each, as docker's.
pub fn prune(bridge: &str) -> Result<i32, Error> {
    require_root("network prune")?;
    for what in network::prune(bridge)? {
        println!("removed {what}");
    }
    Ok(0)
}

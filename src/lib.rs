pub mod cim;
pub mod wsman;

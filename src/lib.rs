pub mod cim;

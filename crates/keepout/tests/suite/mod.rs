//! One module per attack class of the threat model, plus ordinary work that must keep working.

pub mod harness;

mod a01_credentials;
mod a02_environment;
mod a03_sockets;
mod a04_persistence;
mod a05_terminal;
mod a06_processes;
mod a07_privilege;
mod a08_kernel;
mod a09_network;
mod a10_descriptors;
mod a11_resources;
mod a12_paths;
mod a14_git_anywhere;
mod a15_editor_files;
mod a16_leftovers;
mod a17_terminal;
mod a18_memory_disk;
mod a19_system_credentials;
mod a20_host_sockets;
mod agent;
mod agent_terminal;
mod audit;
mod cli;
mod everyday_vault;
mod exec;
mod faults_vault;
mod first_use;
mod net;
mod ordinary_work;
mod pty;
mod review;
mod toolchains;
mod vault;
mod workspaces;

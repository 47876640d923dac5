//! Compiles ONNX's published protobuf schema (proto/onnx-ml.proto) into Rust types for
//! `driftwood import`; protox parses it, so no `protoc` binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx-ml.proto");
    let descriptors = protox::compile(["onnx-ml.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

//! Unpack one layer as `containr pull` does (unpacked, summed, flushed to
//! disk), for `scripts/bench unpack`: `unpack LAYER DIR` prints the
//! diff-id.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, layer, dir] = args.as_slice() else {
        eprintln!("usage: unpack LAYER DIR");
        std::process::exit(2);
    };
    let file = std::fs::File::open(layer).expect("open the layer");
    std::fs::create_dir_all(dir).expect("create DIR");
    // With a pull's default reserve: its free-space checks are measured too.
    let reserve = containr::registry::limits::DEFAULT_DISK_RESERVE;
    match containr::image::store::make_snapshot(file, std::path::Path::new(dir), layer, reserve) {
        Ok(made) => println!("{}", made.diff_id),
        Err(e) => {
            eprintln!("unpack: {e}");
            std::process::exit(1);
        }
    }
}

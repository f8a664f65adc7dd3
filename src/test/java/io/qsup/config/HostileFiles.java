package io.qsup.config;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Real files on disk that are not what their {@code .yaml} name promises: links to devices, FIFOs, huge files. */
final class HostileFiles {
    private HostileFiles() {}

    /** {@code ln -s /dev/zero FILE}: endless bytes behind a file of size 0. */
    static Path linkToDevZero(Path file) throws IOException {
        return Files.createSymbolicLink(file, Path.of("/dev/zero"));
    }

    /** {@code mkfifo FILE}: an open for reading blocks until something writes. */
    static Path fifo(Path file) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("mkfifo", file.toString()).inheritIO().start();
        if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("mkfifo " + file + " failed");
        }
        return file;
    }

    /** A sparse file of {@code size} bytes: huge by stat, nothing on disk. */
    static Path sparse(Path file, long size) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(size);
        }
        return file;
    }

    /** A listening unix socket bound at {@code file}; close it to remove the listener (the file stays). */
    static ServerSocketChannel socket(Path file) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(file));
        return s;
    }

    /** {@code count} unknown keys, one a line: {@code unknown-key-0: 1}, ... */
    static Path unknownKeys(Path file, int count) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < count; i++) {
            sb.append("unknown-key-").append(i).append(": 1\n");
        }
        Files.writeString(file, sb);
        return file;
    }

    /** As many unknown keys as fit in {@code bytes} (within a line of it); returns how many. */
    static int unknownKeysOfSize(Path file, long bytes) throws IOException {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (true) {
            String line = "unknown-key-" + i + ": 1\n";
            if (sb.length() + line.length() > bytes) {
                break;
            }
            sb.append(line);
            i++;
        }
        Files.writeString(file, sb);
        return i;
    }

    /**
     * Daemon settings under {@code dir} with definitions in {@code dir/vms} (created), TCG so no KVM is needed, and
     * the control socket at {@code dir/run/qsupd.sock}.
     */
    static Path settings(Path dir) throws IOException {
        Files.createDirectories(dir.resolve("vms"));
        Path s = dir.resolve("qsupd.yaml");
        Files.writeString(s, "vms-dir: vms\nrun-dir: run\nstate-dir: state\nlog-dir: log\ncontrol-socket: run/qsupd.sock\n"
                + "accel: tcg\n");
        return s;
    }
}

package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup logs NAME}: a VM's lifecycle log (launches, QEMU's own messages), or its serial console log. */
@Command(name = "logs", mixinStandardHelpOptions = true,
        description = "Print a VM's log: QEMU's launch and lifecycle messages, or with --serial its console output.",
        footer = {"", "Examples:", "  qsup logs web1", "  qsup logs web1 --serial -f"})
final class LogsCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME", description = "The VM.")
    String name;

    @Option(names = {"-f", "--follow"}, description = "Keep printing what is appended, until interrupted.")
    boolean follow;

    @Option(names = "--serial", description = "The serial console log instead of the QEMU log.")
    boolean serial;

    @Override
    public Integer call() throws IOException, InterruptedException {
        Path file;
        try (DaemonClient client = daemon.connect()) {
            JsonNode vm = client.call("query-vm", Json.object().put("name", name));
            file = Path.of(vm.path(serial ? "serial-log" : "qemu-log").asText());
        }
        if (!Files.exists(file) && !follow) {
            throw new CliException(ExitCodes.NOT_FOUND, "no log yet at " + file + " (the VM has not been started?)");
        }
        PrintWriter out = spec.commandLine().getOut();
        // A guest's console output holds terminal controls (a shell's cursor-position query, colours); written to a
        // terminal they would act on it, even answer into the user's shell, so there they are shown, not obeyed.
        boolean visible = Table.isTerminal();
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        ByteBuffer bytes = ByteBuffer.allocate(8192);
        CharBuffer chars = CharBuffer.allocate(8192);
        long pos = 0;
        while (true) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                if (ch.size() < pos) {
                    pos = 0; // truncated or replaced: start over
                    bytes.clear();
                }
                ch.position(pos);
                int n;
                while ((n = ch.read(bytes)) > 0) {
                    pos += n;
                    bytes.flip();
                    // A character split across reads stays in the buffer until its last byte arrives.
                    decoder.decode(bytes, chars, false);
                    bytes.compact();
                    chars.flip();
                    out.append(visible ? visibleControls(chars) : chars);
                    chars.clear();
                }
                out.flush();
            } catch (NoSuchFileException e) {
                pos = 0;
            }
            if (!follow) {
                return ExitCodes.OK;
            }
            Thread.sleep(250);
        }
    }

    /** Text with control characters other than newline, tab and carriage return in caret form: ESC as {@code ^[}. */
    static CharSequence visibleControls(CharSequence text) {
        StringBuilder b = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
                b.append('^').append((char) (c + 0x40));
            } else if (c == 0x7f) {
                b.append("^?");
            } else {
                b.append(c);
            }
        }
        return b;
    }
}

package io.qsup.qmp;

/**
 * Every fault of {@link QmpClientFakeServerTest} over the JDK's own unix {@code SocketChannel}, the transport of
 * sessions that pass no file descriptors (the CLI's, to qsupd).
 */
class QmpClientJdkChannelTest extends QmpClientFakeServerTest {
    @Override
    QmpClient.Options options(QmpClient.Options base) {
        return base.withoutFdPassing();
    }
}

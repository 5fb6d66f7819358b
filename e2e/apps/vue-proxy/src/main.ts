import { createApp } from 'vue';
import '@backjob/client';
import App from './App.vue';

createApp(App).mount('#app');
